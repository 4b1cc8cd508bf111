package aioproducer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// exampleCluster stands in for a real Kafka cluster: it starts librdkafka's in-process mock cluster
// with topic, of one partition, and returns its bootstrap servers and a function that stops it.
func exampleCluster(topic string) (bootstrap string, stop func()) {
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		log.Fatal(err)
	}
	if err := mc.CreateTopic(topic, 1, 1); err != nil {
		log.Fatal(err)
	}
	return mc.BootstrapServers(), mc.Close
}

func ExampleProducer_Produce() {
	bootstrap, stop := exampleCluster("greetings")
	defer stop()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	ctx := context.Background()
	var futs []*aioproducer.Future
	for _, name := range []string{"alice", "bob", "carol"} {
		// Produce returns at once; the Future gets the outcome.
		f, err := p.Produce(ctx, &aioproducer.Message{
			Topic: "greetings",
			Key:   []byte(name),
			Value: []byte("hello, " + name),
		})
		if err != nil {
			log.Fatal(err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		d, err := f.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("delivered to %s[%d]@%d\n", d.Topic, d.Partition, d.Offset)
	}
	// Output:
	// delivered to greetings[0]@0
	// delivered to greetings[0]@1
	// delivered to greetings[0]@2
}

func ExampleProducer_ProduceFunc() {
	bootstrap, stop := exampleCluster("greetings")
	defer stop()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol"} {
		msg := &aioproducer.Message{Topic: "greetings", Key: []byte(name), Value: []byte("hello, " + name)}
		// The callback runs once, on the producer's callback goroutine; it must not block.
		err := p.ProduceFunc(ctx, msg, func(d aioproducer.Delivery, err error) {
			if err != nil {
				fmt.Printf("%s failed: %v\n", name, err)
				return
			}
			fmt.Printf("%s delivered to %s[%d]@%d\n", name, d.Topic, d.Partition, d.Offset)
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	// Flush returns once every callback of a message produced before it has run.
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// alice delivered to greetings[0]@0
	// bob delivered to greetings[0]@1
	// carol delivered to greetings[0]@2
}

func ExampleProducer_ProduceBatch() {
	bootstrap, stop := exampleCluster("numbers")
	defer stop()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	ctx := context.Background()
	msgs := []*aioproducer.Message{
		{Topic: "numbers", Value: []byte("one")},
		{Topic: "numbers", Value: []byte("two")},
		{Topic: "numbers", Value: []byte("three")},
	}
	// On error, futs holds the futures of the messages accepted before it.
	futs, err := p.ProduceBatch(ctx, msgs)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range futs {
		d, err := f.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s delivered to %s[%d]@%d\n", f.Message().Value, d.Topic, d.Partition, d.Offset)
	}
	// Output:
	// one delivered to numbers[0]@0
	// two delivered to numbers[0]@1
	// three delivered to numbers[0]@2
}

func ExampleProducer_Close() {
	bootstrap, stop := exampleCluster("greetings")
	defer stop()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	f, err := p.Produce(context.Background(), &aioproducer.Message{Topic: "greetings", Value: []byte("bye")})
	if err != nil {
		log.Fatal(err)
	}

	// Close sends what is buffered and waits for every outcome, or until ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	d, err := f.Wait(ctx) // done already: Close waited for it
	fmt.Printf("delivered to %s[%d]@%d: %v\n", d.Topic, d.Partition, d.Offset, err)

	_, err = p.Produce(ctx, &aioproducer.Message{Topic: "greetings", Value: []byte("too late")})
	fmt.Println("closed:", errors.Is(err, aioproducer.ErrClosed))
	// Output:
	// delivered to greetings[0]@0: <nil>
	// closed: true
}
