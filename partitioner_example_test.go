package aioproducer_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"log"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// A Partitioner that keeps each region's orders in a partition of its own and spreads the rest by key.
// To place keys as the Java client and franz-go do, no Partitioner is needed: set
// "partitioner": "murmur2_random".
func ExampleWithPartitioner() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("orders", 4))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	byRegion := func(msg *aioproducer.Message, partitions int32) int32 {
		switch {
		case strings.HasPrefix(string(msg.Key), "eu:"):
			return 0
		case strings.HasPrefix(string(msg.Key), "us:"):
			return 1
		}
		h := fnv.New32a()
		h.Write(msg.Key)
		return 2 + int32(h.Sum32()%uint32(partitions-2)) // partitions is the topic's count: 4
	}
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": c.Bootstrap()}, aioproducer.WithPartitioner(byRegion))
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	ctx := context.Background()
	for _, key := range []string{"eu:alice", "us:bob", "eu:carol", "apac:dave"} {
		// The first Produce to a topic waits for its partition count (ctx bounds the wait).
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: "orders", Key: []byte(key), Value: []byte("tea")})
		if err != nil {
			log.Fatal(err)
		}
		d, err := f.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: partition %d\n", key, d.Partition)
	}
	// Output:
	// eu:alice: partition 0
	// us:bob: partition 1
	// eu:carol: partition 0
	// apac:dave: partition 2
}

// Partitions answers from the cluster's metadata; on aioproducertest.Fake, from WithPartitions.
func ExampleProducer_Partitions() {
	fake, err := aioproducertest.StartFake(aioproducertest.WithPartitions("orders", 3))
	if err != nil {
		log.Fatal(err)
	}
	defer fake.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounds the wait for metadata
	defer cancel()
	for _, topic := range []string{"orders", "audit"} {
		n, err := fake.Partitions(ctx, topic)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d\n", topic, n)
	}
	// Output:
	// orders: 3
	// audit: 1
}
