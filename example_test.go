package aioproducer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// exampleCluster stands in for a real Kafka cluster: it starts librdkafka's in-process mock cluster
// with topic, of one partition, and returns its bootstrap servers and a function that stops it.
func exampleCluster(topic string) (bootstrap string, stop func()) {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic(topic, 1))
	if err != nil {
		log.Fatal(err)
	}
	return c.Bootstrap(), c.Close
}

// closeWithin closes p, waiting at most d: with no broker reachable, an unbounded Close would wait
// until librdkafka times every message out (message.timeout.ms, 5 minutes by default).
func closeWithin(p *aioproducer.Producer, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Printf("close: %v", err) // the messages it could not send have failed with an error
	}
}

func ExampleNew() {
	// New checks every setting before it starts anything; a bad one fails with a *ConfigError that
	// names the key as written.
	_, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers": "localhost:9092",
		"linger.ms":         "soon",
	})
	var ce *aioproducer.ConfigError
	if errors.As(err, &ce) {
		fmt.Println("bad setting:", ce.Key)
	}

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092", "linger.ms": 10},
		aioproducer.WithMaxBuffered(10_000, 16<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)
	fmt.Println("started")
	// Output:
	// bad setting: linger.ms
	// started
}

func ExampleProducer_TryProduce() {
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	if err := mc.CreateTopic("events", 1, 1); err != nil {
		log.Fatal(err)
	}
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()},
		aioproducer.WithMaxBuffered(2, 1<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	_ = mc.SetBrokerDown(1) // nothing is delivered: the buffer fills
	for i := range 3 {
		// TryProduce never blocks: it fails with ErrBufferFull once WithMaxBuffered's limits are reached.
		_, err := p.TryProduce(&aioproducer.Message{Topic: "events", Value: []byte{byte(i)}})
		switch {
		case errors.Is(err, aioproducer.ErrBufferFull):
			fmt.Printf("message %d: buffer full, try later or drop it\n", i)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("message %d: accepted\n", i)
		}
	}
	_ = mc.SetBrokerUp(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("delivered:", p.Stats().Delivered)
	// Output:
	// message 0: accepted
	// message 1: accepted
	// message 2: buffer full, try later or drop it
	// delivered: 2
}

// Telling failures apart: a *DeliveryError carries librdkafka's error, and the helpers say what to do
// about it.
func ExampleIsOutcomeUnknown() {
	bootstrap, stop := exampleCluster("orders") // one partition
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: "orders", Value: []byte("o-1"), Partition: aioproducer.ExplicitPartition(7)})
	if err != nil {
		log.Fatal(err) // not accepted: invalid, closed, fatal, or ctx ended while the buffer was full
	}
	_, err = f.Wait(ctx)
	var de *aioproducer.DeliveryError
	var ke kafka.Error
	if errors.As(err, &de) && errors.As(err, &ke) {
		fmt.Printf("topic %s: %v\n", de.Topic, ke.Code())
	}
	switch {
	case aioproducer.IsFatal(err):
		fmt.Println("fatal: close the producer and create a new one")
	case aioproducer.IsOutcomeUnknown(err):
		fmt.Println("may be in the log: producing it again may duplicate it")
	case aioproducer.IsRetriable(err):
		fmt.Println("retriable: producing it again may succeed")
	default:
		fmt.Println("not written, and producing it again as it is will fail again")
	}
	// Output:
	// topic orders: Local: Unknown partition
	// not written, and producing it again as it is will fail again
}

func ExampleProducer_Produce() {
	bootstrap, stop := exampleCluster("greetings")
	defer stop()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

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
	defer closeWithin(p, 10*time.Second)

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
	defer closeWithin(p, 10*time.Second)

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

// outcomes is a hook that counts messages by outcome and sets a header on each, as a metrics or
// tracing adapter does. Hooks may be called from several goroutines at once: it counts atomically.
type outcomes struct{ delivered, failed, refused atomic.Int64 }

// OnProduce makes it a HookProduce: it runs in the goroutine that calls Produce, before the message
// is checked, and may add headers.
func (o *outcomes) OnProduce(_ context.Context, m *aioproducer.Message) {
	m.Headers = append(m.Headers, aioproducer.Header{Key: "produced-by", Value: []byte("example")})
}

// OnDelivery makes it a HookDelivery: exactly one event per message OnProduce saw.
func (o *outcomes) OnDelivery(e aioproducer.DeliveryEvent) {
	switch {
	case e.Refused:
		o.refused.Add(1)
	case e.Err != nil:
		o.failed.Add(1)
	default:
		o.delivered.Add(1)
	}
}

func ExampleWithHooks() {
	bootstrap, stop := exampleCluster("greetings")
	defer stop()

	o := new(outcomes)
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap}, aioproducer.WithHooks(o))
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := p.Produce(ctx, &aioproducer.Message{Topic: "greetings", Value: []byte("hello, " + name)}); err != nil {
			log.Fatal(err)
		}
	}
	_, err = p.Produce(ctx, &aioproducer.Message{Value: []byte("no topic")})
	fmt.Println("refused:", errors.Is(err, aioproducer.ErrInvalidMessage))
	// A Flush that returns has seen the delivery events of every message it waited for.
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("delivered %d, failed %d, refused %d\n", o.delivered.Load(), o.failed.Load(), o.refused.Load())
	// Output:
	// refused: true
	// delivered 3, failed 0, refused 1
}

// TuneMalloc, called once at the start of main, has glibc keep the memory librdkafka frees after each
// burst of messages instead of returning it to the system and faulting it in again for the next one:
// less CPU per message at 1 KB values, for more resident memory. It is process-wide, so it is the
// program's choice, not a producer option. (No Output: the example is compiled, not run, as it would
// change the test binary's malloc.)
func ExampleTuneMalloc() {
	if err := aioproducer.TuneMalloc(aioproducer.KeepMallocMemory); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		log.Fatal(err) // not glibc (ErrUnsupported) is fine: nothing to tune
	}
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092"})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)
	// ... produce as usual.
}
