// Command eos is an exactly-once consume-transform-produce loop run by an eos.Session: it reads words
// from the input topic eos-in in the consumer group eos-uppercaser, writes each one upper-cased to
// eos-out, and commits the group's offsets in the same transaction as the outputs, one transaction
// per batch of input. A read_committed consumer downstream sees every output once.
//
//	go run ./examples/eos                                  # an in-process mock cluster
//	KAFKA_BOOTSTRAP=localhost:9092 go run ./examples/eos   # a real cluster
//
// The input must be written before the example runs: on its own mock cluster the example writes it;
// on a real cluster, create the topics eos-in and eos-out and write the words first, for example
// printf '%s\n' exactly once from consume to produce with offsets in the transaction | kcat -P -b localhost:9092 -t eos-in
// The example then reads eos-out back until it holds one output per word. If they do not come within
// its deadline (30 s), it stops the session and exits with an error that names the input topic.
//
// librdkafka's mock cluster runs transactions and consumer groups, but does not keep the offsets a
// transaction commits: run it against a real cluster to see a second run resume where the first
// stopped.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/eos"
)

const (
	inTopic, outTopic = "eos-in", "eos-out"
	group             = "eos-uppercaser"
	batch             = 5                // input messages per transaction, at most
	deadline          = 30 * time.Second // for the whole run
	closeMargin       = 3 * time.Second  // of the deadline, kept for closing the session
)

var words = []string{"exactly", "once", "from", "consume", "to", "produce", "with", "offsets", "in", "the", "transaction"}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := run(ctx, os.Getenv("KAFKA_BOOTSTRAP")); err != nil {
		fmt.Fprintln(os.Stderr, "eos:", err)
		os.Exit(1)
	}
}

// run runs the example against bootstrap, or against a mock cluster of its own, with the input
// written, if bootstrap is "". ctx's deadline bounds it.
func run(ctx context.Context, bootstrap string) error {
	if bootstrap == "" {
		mc, err := kafka.NewMockCluster(1)
		if err != nil {
			return err
		}
		defer mc.Close()
		for _, t := range []string{inTopic, outTopic} {
			if err := mc.CreateTopic(t, 1, 1); err != nil {
				return err
			}
		}
		bootstrap = mc.BootstrapServers()
		if err := writeInput(ctx, bootstrap, words); err != nil {
			return err
		}
	}
	return uppercase(ctx, bootstrap)
}

// toUpper is the transform: each input word, upper-cased, to the output topic, in the session's
// transaction.
func toUpper(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
	for _, m := range msgs {
		if err := out.Emit(ctx, &aioproducer.Message{Topic: outTopic, Key: m.Key, Value: bytes.ToUpper(m.Value)}); err != nil {
			return err
		}
	}
	fmt.Printf("transformed a batch of %d messages\n", len(msgs))
	return nil
}

// uppercase runs the session until the output holds one word per input word, or ctx's deadline
// (less closeMargin) passes.
func uppercase(ctx context.Context, bootstrap string) error {
	s, err := eos.New(
		kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"},
		kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": "eos-uppercaser-1"},
		[]string{inTopic}, toUpper, eos.WithBatch(batch, 100*time.Millisecond))
	if err != nil {
		return err
	}
	readUntil := time.Now().Add(deadline)
	if dl, ok := ctx.Deadline(); ok {
		readUntil = dl.Add(-closeMargin)
	}
	readCtx, stopReading := context.WithDeadline(ctx, readUntil)
	defer stopReading()
	runErr := make(chan error, 1)
	go func() {
		err := s.Run(ctx)
		stopReading() // the session stopped: no more output will come
		runErr <- err
	}()

	readErr := readOutput(readCtx, bootstrap, len(words))
	closeErr := s.Close(ctx) // stops Run, aborts a transaction left open, leaves the group
	if err := <-runErr; !errors.Is(err, eos.ErrClosed) {
		return fmt.Errorf("the session stopped: %w", err)
	}
	return errors.Join(readErr, closeErr)
}

// writeInput writes the input words (a plain, non-transactional producer).
func writeInput(ctx context.Context, bootstrap string, words []string) error {
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return err
	}
	defer func() { _ = p.Close(ctx) }()
	for _, w := range words {
		if _, err := p.Produce(ctx, &aioproducer.Message{Topic: inTopic, Value: []byte(w)}); err != nil {
			return err
		}
	}
	return p.Flush(ctx)
}

// readOutput reads n committed outputs, as a downstream read_committed consumer does, until ctx ends.
func readOutput(ctx context.Context, bootstrap string, n int) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "eos-reader", "isolation.level": "read_committed",
		"auto.offset.reset": "earliest",
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe(outTopic, nil); err != nil {
		return err
	}
	var got []string
	for len(got) < n {
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d outputs in %s before the deadline: is the input written to %s? "+
				"(the example writes it only on its own mock cluster)", len(got), n, outTopic, inTopic)
		}
		if m, ok := c.Poll(200).(*kafka.Message); ok {
			got = append(got, string(m.Value))
		}
	}
	fmt.Println("read_committed output:", strings.Join(got, " "))
	return nil
}
