// Command quickstart produces a few messages with aioproducer and prints where they went.
//
//	go run ./examples/quickstart                                  # an in-process mock cluster
//	KAFKA_BOOTSTRAP=localhost:9092 go run ./examples/quickstart   # a real cluster
//
// KAFKA_TOPIC names the topic (default "quickstart"); on a real cluster it must exist, or the brokers
// must create topics automatically. Ctrl-C stops it: messages in flight still get their outcome within
// Close's timeout.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

const closeTimeout = 5 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first Ctrl-C, a second one kills at once

	topic := os.Getenv("KAFKA_TOPIC")
	if topic == "" {
		topic = "quickstart"
	}
	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
	if bootstrap == "" {
		// The mock cluster (aioproducertest's, librdkafka's underneath) runs on a librdkafka client of
		// its own, created with an empty configuration (NewMockCluster takes none), so librdkafka's
		// rd_kafka_new logs a CONFWARN notice on stderr that no setting here can quiet. Say what it
		// is before it appears.
		fmt.Fprintln(os.Stderr, "KAFKA_BOOTSTRAP is not set: starting an in-process mock cluster "+
			"(its internal client's CONFWARN \"No `bootstrap.servers` configured\" is expected and harmless)")
		mc, err := aioproducertest.StartCluster(aioproducertest.WithTopic(topic, 3))
		if err != nil {
			return err
		}
		defer mc.Close()
		bootstrap = mc.Bootstrap()
		fmt.Fprintf(os.Stderr, "mock cluster at %s, topic %q with 3 partitions\n", bootstrap, topic)
	}

	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers": bootstrap,
		"client.id":         "aioproducer-quickstart",
	})
	if err != nil {
		return err
	}
	err = produce(ctx, p, topic)
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "interrupted: closing, up to %v (Ctrl-C again to quit at once)\n", closeTimeout)
	}

	// Close even after an error or Ctrl-C: it waits (up to closeTimeout) for what is in flight.
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if cerr := p.Close(cctx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close: %w", cerr))
	}
	return err
}

func produce(ctx context.Context, p *aioproducer.Producer, topic string) error {
	// Future style: Produce returns at once, Wait gets the outcome.
	var futs []*aioproducer.Future
	for i := range 10 {
		f, err := p.Produce(ctx, &aioproducer.Message{
			Topic: topic,
			Key:   []byte("user-" + strconv.Itoa(i%4)),
			Value: fmt.Appendf(nil, `{"event":"click","n":%d}`, i),
			Headers: []aioproducer.Header{
				{Key: "source", Value: []byte("quickstart")},
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
			},
		})
		if err != nil {
			return fmt.Errorf("produce message %d: %w", i, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		d, err := f.Wait(ctx)
		if err != nil {
			return fmt.Errorf("message key=%s: %w", f.Message().Key, err)
		}
		fmt.Printf("delivered key=%s to %s[%d]@%d\n", f.Message().Key, d.Topic, d.Partition, d.Offset)
	}

	// Callback style: the callback runs once, on the producer's callback goroutine.
	cbErr := make(chan error, 1)
	msg := &aioproducer.Message{Topic: topic, Key: []byte("user-callback"), Value: []byte(`{"event":"done"}`)}
	err := p.ProduceFunc(ctx, msg, func(d aioproducer.Delivery, err error) {
		if err == nil {
			fmt.Printf("callback: delivered key=%s to %s[%d]@%d\n", msg.Key, d.Topic, d.Partition, d.Offset)
		}
		cbErr <- err
	})
	if err != nil {
		return fmt.Errorf("produce with callback: %w", err)
	}

	// Flush returns once every message produced so far has its outcome: the callback has run.
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := <-cbErr; err != nil {
		return fmt.Errorf("message key=%s: %w", msg.Key, err)
	}

	s := p.Stats()
	fmt.Printf("stats: delivered=%d failed=%d batches=%d mean batch size=%.1f queue-full waits=%d\n",
		s.Delivered, s.Failed, s.Batches, s.MeanBatchSize, s.QueueFullWaits)
	return nil
}
