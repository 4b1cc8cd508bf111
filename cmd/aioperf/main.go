// Command aioperf is a producer perf tool in the manner of kafka-producer-perf-test: it produces count
// messages of size bytes through aioproducer, optionally at a fixed rate, prints a live progress line
// and a final table of throughput and produce→delivered latency percentiles, and can write the
// per-message latencies as CSV.
//
//	go run ./cmd/aioperf -count 1000000 -size 100 -engine batch
//	go run ./cmd/aioperf -broker localhost:9092 -topic perf -rate 50000 -compression lz4 -csv lat.csv
//
// Without -broker it starts librdkafka's in-process mock cluster.
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aioperf:", err)
		os.Exit(1)
	}
}

func run() error {
	broker := flag.String("broker", "", "bootstrap servers (default: an in-process mock cluster)")
	topic := flag.String("topic", "aioperf", "topic")
	partitions := flag.Int("partitions", 1, "partitions of the topic on the mock cluster")
	count := flag.Int("count", 1_000_000, "messages to produce")
	size := flag.Int("size", 100, "value size in bytes")
	rate := flag.Int("rate", 0, "messages per second, all goroutines together (0: as fast as possible)")
	acks := flag.String("acks", "all", "acks: all, 1 or 0 (idempotence only with all)")
	compression := flag.String("compression", "none", "compression.type: none, gzip, snappy, lz4, zstd")
	engine := flag.String("engine", "kafka", "engine: kafka (kafka.Producer) or batch")
	concurrency := flag.Int("concurrency", 1, "producing goroutines")
	linger := flag.Int("linger", 5, "linger.ms")
	csvPath := flag.String("csv", "", "write every message's produce→delivered latency (µs) to this CSV file")
	flag.Parse()

	eng, err := aioproducer.ParseEngine(*engine)
	if err != nil {
		return fmt.Errorf("-engine: %w", err)
	}
	if *count < 1 || *size < 0 || *concurrency < 1 || *rate < 0 {
		return fmt.Errorf("-count, -concurrency must be positive, -size and -rate not negative")
	}
	bootstrap := *broker
	if bootstrap == "" {
		mc, err := kafka.NewMockCluster(1)
		if err != nil {
			return err
		}
		defer mc.Close()
		if err := mc.CreateTopic(*topic, *partitions, 1); err != nil {
			return err
		}
		bootstrap = mc.BootstrapServers()
	}
	cm := kafka.ConfigMap{
		"bootstrap.servers": bootstrap,
		"acks":              *acks,
		"compression.type":  *compression,
		"linger.ms":         *linger,
	}
	if *acks != "all" && *acks != "-1" {
		cm["enable.idempotence"] = false
	}
	p, err := aioproducer.New(cm, aioproducer.WithEngine(eng),
		aioproducer.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	ctx := context.Background()
	defer p.Close(ctx)

	value := make([]byte, *size)
	// One message first, so connection and metadata setup are not measured.
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: *topic, Value: value})
	if err != nil {
		return err
	}
	if _, err := f.Wait(ctx); err != nil {
		return fmt.Errorf("warm-up message: %w", err)
	}
	lat := make([]int64, *count) // µs, by message
	var sent, delivered, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Add(*count)

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	start := time.Now()
	go func() { // live progress line
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastT := int64(0), start
		for {
			select {
			case <-stopProgress:
				fmt.Fprintln(os.Stderr)
				return
			case now := <-t.C:
				d := delivered.Load() + failed.Load()
				fmt.Fprintf(os.Stderr, "\r%8.1fs  sent %d  done %d/%d  %.0f msgs/s  %.1f MB/s  failed %d   ",
					now.Sub(start).Seconds(), sent.Load(), d, *count,
					float64(d-last)/now.Sub(lastT).Seconds(), float64(d-last)*float64(*size)/1e6/now.Sub(lastT).Seconds(),
					failed.Load())
				last, lastT = d, now
			}
		}
	}()

	var next atomic.Int64
	var prodWG sync.WaitGroup
	for range *concurrency {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *count {
					return
				}
				if *rate > 0 {
					if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				err := p.ProduceFunc(ctx, &aioproducer.Message{Topic: *topic, Value: value}, func(_ aioproducer.Delivery, err error) {
					lat[i] = time.Since(t0).Microseconds()
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, &err)
					} else {
						delivered.Add(1)
					}
					wg.Done()
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					lat[i] = -1
					failed.Add(1)
					wg.Done()
					continue
				}
				sent.Add(1)
			}
		}()
	}
	prodWG.Wait()
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	ok := make([]int64, 0, len(lat))
	for _, l := range lat {
		if l >= 0 {
			ok = append(ok, l)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
	pct := func(q float64) time.Duration {
		if len(ok) == 0 {
			return 0
		}
		return time.Duration(ok[min(len(ok)-1, int(q*float64(len(ok))))]) * time.Microsecond
	}
	n := delivered.Load()
	fmt.Printf("engine %s, %d × %d B, compression %s, acks %s, concurrency %d, rate %s, broker %s\n\n",
		eng, *count, *size, *compression, *acks, *concurrency, rateName(*rate), brokerName(*broker))
	fmt.Printf("| delivered | failed | seconds | msgs/s | MB/s | p50 | p95 | p99 | p99.9 | max |\n")
	fmt.Printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| %d | %d | %.2f | %.0f | %.1f | %v | %v | %v | %v | %v |\n", n, failed.Load(), elapsed.Seconds(),
		float64(n)/elapsed.Seconds(), float64(n)*float64(*size)/1e6/elapsed.Seconds(),
		pct(0.50), pct(0.95), pct(0.99), pct(0.999), pct(1))
	if e := firstErr.Load(); e != nil {
		fmt.Printf("\nfirst error: %v\n", *e)
	}
	if *csvPath != "" {
		if err := writeCSV(*csvPath, lat); err != nil {
			return err
		}
	}
	return nil
}

func rateName(r int) string {
	if r == 0 {
		return "unlimited"
	}
	return strconv.Itoa(r) + "/s"
}

func brokerName(b string) string {
	if b == "" {
		return "in-process mock cluster"
	}
	return b
}

func writeCSV(path string, lat []int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(io.Writer(f))
	_ = w.Write([]string{"message", "latency_us"})
	for i, l := range lat {
		_ = w.Write([]string{strconv.Itoa(i), strconv.FormatInt(l, 10)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
