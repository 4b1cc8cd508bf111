package aioproducer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Side-by-side benchmarks: the raw confluent-kafka-go producer and aioproducer, same mock cluster, same
// librdkafka settings, one process. Compare ns/op and msgs/s of the pairs; `make bench` runs them
// interleaved and prints the ratios.

const benchValueSize = 100

// benchConfig is what both clients get: the producer's defaults, made explicit for the raw client.
func benchConfig(bootstrap string, linger int) kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"acks":               "all",
		"enable.idempotence": true,
		"linger.ms":          linger,
	}
}

func benchCluster(b *testing.B) *kafka.MockCluster {
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(mc.Close)
	if err := mc.CreateTopic("bench", 1, 1); err != nil {
		b.Fatal(err)
	}
	return mc
}

// rawProducer is the raw client as a careful user runs it: delivery reports on Events, drained by one
// goroutine, with only the fields it needs.
func rawProducer(b *testing.B, cm kafka.ConfigMap) *kafka.Producer {
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(kp.Close)
	return kp
}

func benchAIO(b *testing.B, cm kafka.ConfigMap, opts ...Option) *Producer {
	p, err := New(cm, append([]Option{WithLogger(quietLogger)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// BenchmarkLoneMessage measures produce→delivered latency of one message at a time on an idle
// producer: ns/op is the latency.
func BenchmarkLoneMessage(b *testing.B) {
	value := make([]byte, benchValueSize)
	for _, linger := range []int{5, 0} {
		b.Run(fmt.Sprintf("linger=%dms/raw", linger), func(b *testing.B) {
			mc := benchCluster(b)
			kp := rawProducer(b, benchConfig(mc.BootstrapServers(), linger))
			topic := "bench"
			dr := make(chan kafka.Event, 1)
			one := func() {
				err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: value}, dr)
				if err != nil {
					b.Fatal(err)
				}
				if m := (<-dr).(*kafka.Message); m.TopicPartition.Error != nil {
					b.Fatal(m.TopicPartition.Error)
				}
			}
			one() // connection, metadata and the idempotent producer id are not part of the latency
			b.ResetTimer()
			for range b.N {
				one()
			}
		})
		b.Run(fmt.Sprintf("linger=%dms/aioproducer", linger), func(b *testing.B) {
			mc := benchCluster(b)
			p := benchAIO(b, benchConfig(mc.BootstrapServers(), linger))
			ctx := context.Background()
			one := func() {
				f, err := p.Produce(ctx, &Message{Topic: "bench", Value: value})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			one() // as for raw: set-up is not latency
			b.ResetTimer()
			for range b.N {
				one()
			}
		})
	}
}

// BenchmarkThroughput measures messages per second of a stream of 100-byte messages, waiting for every
// delivery: ns/op is per message.
func BenchmarkThroughput(b *testing.B) {
	value := make([]byte, benchValueSize)
	b.Run("raw", func(b *testing.B) {
		mc := benchCluster(b)
		kp := rawProducer(b, benchConfig(mc.BootstrapServers(), 5))
		topic := "bench"
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < b.N; {
				if m, ok := (<-kp.Events()).(*kafka.Message); ok {
					if m.TopicPartition.Error != nil {
						b.Error(m.TopicPartition.Error)
					}
					n++
				}
			}
		}()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			for {
				err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: value}, nil)
				if err == nil {
					break
				}
				if err.(kafka.Error).Code() != kafka.ErrQueueFull {
					b.Fatal(err)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("aioproducer/Produce", func(b *testing.B) { benchProduce(b) })
	b.Run("aioproducer/ProduceBatch", func(b *testing.B) {
		mc := benchCluster(b)
		p := benchAIO(b, benchConfig(mc.BootstrapServers(), 5))
		ctx := context.Background()
		msgs := make([]*Message, b.N)
		for i := range msgs {
			msgs[i] = &Message{Topic: "bench", Value: value}
		}
		b.ResetTimer()
		start := time.Now()
		var futs []*Future
		for i := 0; i < b.N; i += 1000 {
			fs, err := p.ProduceBatch(ctx, msgs[i:min(i+1000, b.N)])
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, fs...)
		}
		for _, f := range futs {
			if _, err := f.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

// benchProduce is BenchmarkThroughput's aioproducer/Produce: a stream of benchValueSize-byte messages
// through Produce, waiting for every delivery, on a producer with opts.
func benchProduce(b *testing.B, opts ...Option) {
	value := make([]byte, benchValueSize)
	mc := benchCluster(b)
	p := benchAIO(b, benchConfig(mc.BootstrapServers(), 5), opts...)
	ctx := context.Background()
	msgs := make([]Message, b.N)
	futs := make([]*Future, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		msgs[i] = Message{Topic: "bench", Value: value}
		f, err := p.Produce(ctx, &msgs[i])
		if err != nil {
			b.Fatal(err)
		}
		futs[i] = f
	}
	for _, f := range futs {
		if _, err := f.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// noopHook is a HookProduce and a HookDelivery that do nothing: the cost of the hook plumbing itself.
type noopHook struct{}

func (noopHook) OnProduce(context.Context, *Message) {}
func (noopHook) OnDelivery(DeliveryEvent)            {}

// BenchmarkHooks is the cost of hooks per message: Produce throughput with no hook (the fast path:
// Futures finished on the report goroutine), and with a no-op HookProduce and HookDelivery (every
// outcome then also goes through the callback goroutine). -count runs each one its count of times in a
// row; on a busy machine run the pair interleaved instead, from one test binary:
//
//	go test -c -o hooks.test . && for i in 1 2 3 4 5; do for b in none noop-produce-delivery; do
//	./hooks.test -test.run '^$' -test.bench "^BenchmarkHooks/$b\$" -test.benchmem -test.benchtime 200000x; done; done
func BenchmarkHooks(b *testing.B) {
	b.Run("none", func(b *testing.B) { benchProduce(b) })
	b.Run("noop-produce-delivery", func(b *testing.B) { benchProduce(b, WithHooks(noopHook{})) })
}

// BenchmarkTransactions measures transactional throughput: each op is one transaction of txnMsgs
// messages of benchValueSize bytes, begun, produced, and committed once every message is delivered.
// The raw client and aioproducer get the same configuration; the mock cluster coordinates.
func BenchmarkTransactions(b *testing.B) {
	const txnMsgs = 1000
	value := make([]byte, benchValueSize)
	report := func(b *testing.B, start time.Time) {
		secs := time.Since(start).Seconds()
		b.ReportMetric(float64(b.N)/secs, "commits/s")
		b.ReportMetric(float64(b.N*txnMsgs)/secs, "msgs/s")
	}
	b.Run("raw", func(b *testing.B) {
		mc := benchCluster(b)
		cm := benchConfig(mc.BootstrapServers(), 5)
		cm["transactional.id"] = "bench-raw"
		kp := rawProducer(b, cm)
		ctx := context.Background()
		if err := kp.InitTransactions(ctx); err != nil {
			b.Fatal(err)
		}
		topic := "bench"
		var wg sync.WaitGroup
		go func() { // the delivery reports of every transaction
			for ev := range kp.Events() {
				if m, ok := ev.(*kafka.Message); ok {
					if m.TopicPartition.Error != nil {
						b.Error(m.TopicPartition.Error)
					}
					wg.Done()
				}
			}
		}()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := kp.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
			wg.Add(txnMsgs)
			for range txnMsgs {
				for {
					err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: value}, nil)
					if err == nil {
						break
					}
					if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
						b.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if err := kp.CommitTransaction(ctx); err != nil { // flushes first, as the raw API does
				b.Fatal(err)
			}
			wg.Wait()
		}
		report(b, start)
	})
	b.Run("aioproducer", func(b *testing.B) {
		mc := benchCluster(b)
		cm := benchConfig(mc.BootstrapServers(), 5)
		cm["transactional.id"] = "bench-aio"
		p := benchAIO(b, cm)
		ctx := context.Background()
		if err := p.InitTransactions(ctx); err != nil {
			b.Fatal(err)
		}
		msgs := make([]*Message, txnMsgs)
		for i := range msgs {
			msgs[i] = &Message{Topic: "bench", Value: value}
		}
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := p.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
			if _, err := p.ProduceBatch(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			if err := p.CommitTransaction(ctx); err != nil { // waits for every outcome first
				b.Fatal(err)
			}
		}
		report(b, start)
	})
}
