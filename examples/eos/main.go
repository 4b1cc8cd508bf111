// Command eos is an exactly-once consume-transform-produce loop: it reads words from an input topic
// with a confluent-kafka-go consumer, writes each one upper-cased to an output topic with a
// transactional aioproducer, and commits the consumer's offsets in the same transaction, one
// transaction per batch of input. A read_committed consumer downstream sees every output once.
//
//	go run ./examples/eos                                  # an in-process mock cluster
//	KAFKA_BOOTSTRAP=localhost:9092 go run ./examples/eos   # a real cluster (topics eos-in, eos-out must exist)
//
// On the mock cluster it first writes the input itself. librdkafka's mock cluster supports
// transactions, but does not hide aborted messages from read_committed consumers: run it against a
// real cluster to see that part.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

const (
	inTopic, outTopic = "eos-in", "eos-out"
	group             = "eos-uppercaser"
	batch             = 5 // input messages per transaction
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eos:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	words := []string{"exactly", "once", "from", "consume", "to", "produce", "with", "offsets", "in", "the", "transaction"}

	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
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

	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           group,
		"isolation.level":    "read_committed", // read only committed input
		"enable.auto.commit": false,            // the transaction commits the offsets
		"auto.offset.reset":  "earliest",
	})
	if err != nil {
		return err
	}
	defer consumer.Close()
	if err := consumer.Subscribe(inTopic, nil); err != nil {
		return err
	}

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": "eos-uppercaser-1"})
	if err != nil {
		return err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = p.Close(cctx) // aborts a transaction left open
	}()
	if err := p.InitTransactions(ctx); err != nil {
		return err
	}

	done := 0
	for done < len(words) {
		n, err := transformBatch(ctx, consumer, p)
		if err != nil {
			return err
		}
		done += n
	}
	return readOutput(ctx, bootstrap, len(words))
}

// transformBatch runs one transaction: up to batch input messages in, their outputs and the consumer's
// offsets out, committed together. On an error that asks for it, it aborts and rewinds the consumer to
// the last committed offsets, so the batch is done again.
func transformBatch(ctx context.Context, c *kafka.Consumer, p *aioproducer.Producer) (int, error) {
	if err := p.BeginTransaction(); err != nil {
		return 0, err
	}
	n := 0
	for n < batch {
		ev := c.Poll(200)
		m, ok := ev.(*kafka.Message)
		if !ok {
			if n > 0 || ctx.Err() != nil {
				break // commit what this transaction has
			}
			continue
		}
		out := strings.ToUpper(string(m.Value))
		if _, err := p.Produce(ctx, &aioproducer.Message{Topic: outTopic, Key: m.Key, Value: []byte(out)}); err != nil {
			return 0, err
		}
		n++
	}
	positions, err := c.Position(mustAssignment(c))
	if err != nil {
		return 0, err
	}
	cgm, err := c.GetConsumerGroupMetadata()
	if err != nil {
		return 0, err
	}
	err = p.SendOffsetsToTransaction(ctx, positions, cgm)
	if err == nil {
		err = p.CommitTransaction(ctx)
	}
	switch {
	case err == nil:
		fmt.Printf("committed a transaction of %d messages\n", n)
		return n, nil
	case aioproducer.TxnRequiresAbort(err):
		fmt.Println("aborting:", err)
		if err := p.AbortTransaction(ctx); err != nil {
			return 0, err
		}
		return 0, rewind(c)
	default: // fatal, or ctx ended: give up
		return 0, err
	}
}

func mustAssignment(c *kafka.Consumer) []kafka.TopicPartition {
	parts, err := c.Assignment()
	if err != nil {
		return nil
	}
	return parts
}

// rewind moves the consumer back to the group's committed offsets.
func rewind(c *kafka.Consumer) error {
	committed, err := c.Committed(mustAssignment(c), 10000)
	if err != nil {
		return err
	}
	for _, tp := range committed {
		if tp.Offset < 0 {
			tp.Offset = kafka.OffsetBeginning
		}
		if err := c.Seek(tp, 10000); err != nil {
			return err
		}
	}
	return nil
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

// readOutput reads n committed outputs, as a downstream read_committed consumer does.
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
			return errors.New("timed out reading the output")
		}
		if m, ok := c.Poll(200).(*kafka.Message); ok {
			got = append(got, string(m.Value))
		}
	}
	fmt.Println("read_committed output:", strings.Join(got, " "))
	return nil
}
