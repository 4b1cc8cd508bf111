// Command aioperf is a producer perf tool in the manner of kafka-producer-perf-test: it produces count
// messages of size bytes through aioproducer, optionally at a fixed rate, prints a live progress line
// and a final table of throughput and produce→delivered latency percentiles followed by a memory
// line, and can write the per-message latencies as CSV and a latency-over-time plot as SVG.
//
//	go run ./cmd/aioperf -count 1000000 -size 100
//	go run ./cmd/aioperf -broker localhost:9092 -topic perf -rate 50000 -compression lz4 -csv lat.csv
//	go run ./cmd/aioperf -count 10000000 -rss-every 1000000
//	go run ./cmd/aioperf -count 300000 -svg lat.svg
//
// Without -broker it starts librdkafka's in-process mock cluster. With -broker, -partitions N (when given)
// creates the topic with N partitions first if it does not exist.
//
// Latencies are measured from the ProduceFunc call to the delivery callback, in whole microseconds,
// for delivered messages only. The percentiles and max in the table come from a fixed-size
// log-linear histogram (about 19 KiB: exact below 1 ms, then 64 buckets per power of two up to
// about 72 minutes), so they are within 0.8 % of the exact values (max is exact), and the tool keeps
// no per-message state: its memory does not grow with -count. Two flags need per-message data and
// cost memory in proportion to -count:
//
//	-csv path   every message's latency, "message,latency_us" (-1 for a message that failed):
//	            8 bytes per message, kept until the end of the run.
//	-svg path   an SVG plot (1000×500, scalable; opens in any browser) of p50, p99 and max latency
//	            (ms, log scale) against the send time (seconds since the start) in 200 slices of
//	            the run, titled with the run's settings; hovering over a slice shows its numbers.
//	            16 bytes per message (latency and send time; 8 of them shared with -csv).
//
// Memory reporting:
//
//	-rss-every N  print "rss_after_messages=<n> rss_mib=<x>" to stderr each time another N messages
//	              are done (delivered or failed), to check that RSS stays flat; 0 (default) is off.
//
// The line below the table gives the peak RSS (VmHWM) and the RSS at the end (VmRSS) from
// /proc/self/status ("n/a" without /proc), and the Go heap in use and total memory the Go runtime
// obtained from the OS (runtime.MemStats HeapInuse and Sys), in MiB, measured after the last
// delivery and before the CSV and SVG files are written.
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
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
	partitions := flag.Int("partitions", 1, "partitions of the topic on the mock cluster; with -broker, if given, the topic is created with this many partitions (replication factor 1) when it does not exist")
	count := flag.Int("count", 1_000_000, "messages to produce")
	size := flag.Int("size", 100, "value size in bytes")
	rate := flag.Int("rate", 0, "messages per second, all goroutines together (0: as fast as possible)")
	acks := flag.String("acks", "all", "acks: all, 1 or 0 (idempotence only with all)")
	compression := flag.String("compression", "none", "compression.type: none, gzip, snappy, lz4, zstd")
	concurrency := flag.Int("concurrency", 1, "producing goroutines")
	linger := flag.Int("linger", 5, "linger.ms")
	csvPath := flag.String("csv", "", "write every message's produce→delivered latency (µs) to this CSV file (costs 8 bytes per message)")
	svgPath := flag.String("svg", "", "write an SVG plot of p50/p99/max latency over send time to this file (costs 16 bytes per message)")
	rssEvery := flag.Int64("rss-every", 0, "print the RSS to stderr each time another `N` messages are done (0: never)")
	keepMalloc := flag.Bool("keep-malloc-memory", false, "call aioproducer.TuneMalloc(aioproducer.KeepMallocMemory) first (glibc only)")
	flag.Parse()

	if *keepMalloc {
		if err := aioproducer.TuneMalloc(aioproducer.KeepMallocMemory); err != nil {
			return fmt.Errorf("-keep-malloc-memory: %w", err)
		}
	}
	if *count < 1 || *size < 0 || *concurrency < 1 || *rate < 0 || *rssEvery < 0 {
		return fmt.Errorf("-count, -concurrency must be positive, -size, -rate and -rss-every not negative")
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
	} else if partitionsSet() {
		if err := createTopic(bootstrap, *topic, *partitions); err != nil {
			return err
		}
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
	p, err := aioproducer.New(cm,
		aioproducer.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	ctx := context.Background()
	defer func() { // bounded: with no broker reachable, Close would wait out message.timeout.ms
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(cctx)
	}()

	value := make([]byte, *size)
	// One message first, so connection and metadata setup are not measured.
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: *topic, Value: value})
	if err != nil {
		return err
	}
	if _, err := f.Wait(ctx); err != nil {
		return fmt.Errorf("warm-up message: %w", err)
	}
	// Per-message data only when an output needs it; the table needs only hist.
	var lat, sendNs []int64
	if *csvPath != "" || *svgPath != "" {
		lat = make([]int64, *count) // µs, by message; -1: failed
	}
	if *svgPath != "" {
		sendNs = make([]int64, *count) // ns since start, by message
	}
	hist := new(Hist)
	var sent, delivered, failed, done atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Add(*count)

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	// -rss-every: whoever completes message k·N asks this goroutine to read /proc, so the
	// delivery path never does.
	rssReq := make(chan int64, 1024)
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		for n := range rssReq {
			fmt.Fprintf(os.Stderr, "\rrss_after_messages=%d rss_mib=%s\x1b[K\n", n, rssMiB())
		}
	}()
	finish := func() { // one message done, delivered or failed
		d := done.Add(1)
		if *rssEvery > 0 && d%*rssEvery == 0 {
			select {
			case rssReq <- d:
			default: // the reader is 1024 reports behind: drop this one
			}
		}
		wg.Done()
	}

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
				d := done.Load()
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
				if sendNs != nil {
					sendNs[i] = int64(t0.Sub(start))
				}
				err := p.ProduceFunc(ctx, &aioproducer.Message{Topic: *topic, Value: value}, func(_ aioproducer.Delivery, err error) {
					us := time.Since(t0).Microseconds()
					if err != nil {
						us = -1
						failed.Add(1)
						firstErr.CompareAndSwap(nil, &err)
					} else {
						hist.Record(us)
						delivered.Add(1)
					}
					if lat != nil {
						lat[i] = us
					}
					finish()
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					if lat != nil {
						lat[i] = -1
					}
					failed.Add(1)
					finish()
					continue
				}
				sent.Add(1)
			}
		}()
	}
	prodWG.Wait()
	wg.Wait()
	elapsed := time.Since(start)
	close(rssReq)
	<-rssDone
	close(stopProgress)
	<-progressDone

	pct := hist.QuantileDuration
	n := delivered.Load()
	settings := fmt.Sprintf("%d × %d B, compression %s, acks %s, concurrency %d, rate %s, broker %s",
		*count, *size, *compression, *acks, *concurrency, rateName(*rate), brokerName(*broker))
	fmt.Printf("%s\n\n", settings)
	fmt.Printf("| delivered | failed | seconds | msgs/s | MB/s | p50 | p95 | p99 | p99.9 | max |\n")
	fmt.Printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| %d | %d | %.2f | %.0f | %.1f | %v | %v | %v | %v | %v |\n", n, failed.Load(), elapsed.Seconds(),
		float64(n)/elapsed.Seconds(), float64(n)*float64(*size)/1e6/elapsed.Seconds(),
		pct(0.50), pct(0.95), pct(0.99), pct(0.999), pct(1))
	st, stErr := readProcStatus()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("\n%s\n", memoryLine(st, stErr, &ms))
	if e := firstErr.Load(); e != nil {
		fmt.Printf("\nfirst error: %v\n", *e)
	}
	if *csvPath != "" {
		if err := writeCSV(*csvPath, lat); err != nil {
			return err
		}
	}
	if *svgPath != "" {
		if err := writePlot(*svgPath, settings, sendNs, lat); err != nil {
			return fmt.Errorf("-svg: %w", err)
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

func partitionsSet() (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "partitions" })
	return set
}

// createTopic creates topic with n partitions on a real cluster (replication factor 1), unless it exists.
func createTopic(bootstrap, topic string, n int) error {
	adm, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := adm.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: n, ReplicationFactor: 1}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for _, r := range rs {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("create topic %s: %w", topic, r.Error)
		}
	}
	return nil
}
