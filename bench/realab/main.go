// Command realab is one aioproducer throughput run against a real broker, printed in the same
// one-line format as bench/rkexp, so bench/rkexp/ab.sh can interleave it with the C experiments and
// with a realab built at another commit (A/B of an engine change). See bench/rkexp/README.md.
//
//	realab -b BOOTSTRAP [-t topic] [-n count] [-s size] [-z codec] [-mode produce|batch|func] [-parts N] [-keys N] [-copies N] [-window N] [-malloc-trim N -malloc-pad N] [-X k=v]...
//
// One pass of count messages after a warm-up pass of count/10, from the first produce to the last
// delivery. Values are bench/'s: one pseudo-random 16-letter payload for every message (-copies N:
// the same bytes in N separately allocated slices, message i using copy i % N, so that per-value
// costs such as pinning are not measured on one object).
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/bench/internal/aiopass"
)

type kvs []string

func (k *kvs) String() string     { return strings.Join(*k, ",") }
func (k *kvs) Set(s string) error { *k = append(*k, s); return nil }

func payload(size int) []byte {
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	b := make([]byte, size)
	for i := range b {
		b[i] = "abcdefghijklmnop"[rng.IntN(16)]
	}
	return b
}

// rusage is this process's resource usage so far.
func rusage() syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func main() {
	bootstrap := flag.String("b", "", "bootstrap servers")
	topic := flag.String("t", "realab", "topic")
	count := flag.Int("n", 1000000, "messages")
	size := flag.Int("s", 100, "value size")
	codec := flag.String("z", "none", "compression.codec")
	mode := flag.String("mode", "produce", "produce (Produce + futures, 1 goroutine), batch (ProduceBatch of 1000) or func (ProduceFunc, one shared callback)")
	parts := flag.Int("parts", 0, "give message i ExplicitPartition(i % parts); 0: no partition (the partitioner's choice)")
	keys := flag.Int("keys", 0, "give message i the key \"key-<i % keys>\"; 0: no key")
	copies := flag.Int("copies", 0, "give message i its own copy of the value, copy i % copies; 0: one shared value")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured pass")
	window := flag.Int("window", 0, "produce mode: wait for (and drop) message i-window's Future before producing message i, so at most window Futures are held, as a service would (0: hold every Future until the end)")
	mallocTrim := flag.Int("malloc-trim", 0, "if > 0: aioproducer.TuneMalloc with this TrimThreshold (bytes) before New")
	mallocPad := flag.Int("malloc-pad", 0, "the TopPad (bytes) for -malloc-trim")
	var extra kvs
	flag.Var(&extra, "X", "extra librdkafka setting k=v (repeatable)")
	flag.Parse()
	cm := kafka.ConfigMap{"bootstrap.servers": *bootstrap, "acks": "all", "enable.idempotence": "true",
		"linger.ms": "5", "compression.codec": *codec}
	for _, s := range extra {
		k, v, _ := strings.Cut(s, "=")
		cm[k] = v
	}
	if *mallocTrim > 0 {
		if err := aioproducer.TuneMalloc(aioproducer.MallocTuning{TrimThreshold: *mallocTrim, TopPad: *mallocPad}); err != nil {
			fmt.Fprintln(os.Stderr, "realab:", err)
			os.Exit(2)
		}
	}
	p, err := aioproducer.New(cm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "realab:", err)
		os.Exit(2)
	}
	defer p.Close(context.Background())
	val := payload(*size)
	vals := [][]byte{val}
	for i := 1; i < *copies; i++ {
		vals = append(vals, append([]byte(nil), val...))
	}
	msgs := make([]aioproducer.Message, *count)
	ptrs := make([]*aioproducer.Message, *count)
	for i := range msgs {
		msgs[i] = aioproducer.Message{Topic: *topic, Value: vals[i%len(vals)]}
		if *keys > 0 {
			msgs[i].Key = fmt.Appendf(nil, "key-%d", i%*keys)
		}
		if *parts > 0 {
			msgs[i].Partition = aioproducer.ExplicitPartition(int32(i % *parts))
		}
		ptrs[i] = &msgs[i]
	}
	futs := make([]*aioproducer.Future, *count)
	pass := func(n int) error {
		ctx := context.Background()
		switch *mode {
		case "func":
			return aiopass.ProduceFunc(ctx, p, ptrs[:n])
		case "batch":
			for i := 0; i < n; i += 1000 {
				fs, err := p.ProduceBatch(ctx, ptrs[i:min(i+1000, n)])
				if err != nil {
					return err
				}
				copy(futs[i:], fs)
			}
		default:
			for i := 0; i < n; i++ {
				f, err := p.Produce(ctx, ptrs[i])
				if err != nil {
					return err
				}
				futs[i] = f
				if *window > 0 {
					if err := aiopass.AwaitOld(ctx, futs, i-*window, 0); err != nil {
						return err
					}
				}
			}
		}
		for _, f := range futs[:n] {
			if f == nil {
				continue
			}
			if _, err := f.Wait(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	if err := pass(max(*count/10, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "realab:", err)
		os.Exit(3)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "realab:", err)
			os.Exit(2)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ru0, t0 := rusage(), time.Now()
	if err := pass(*count); err != nil {
		fmt.Fprintln(os.Stderr, "realab:", err)
		os.Exit(3)
	}
	ru, el := rusage(), time.Since(t0)
	user := time.Duration(ru.Utime.Nano() - ru0.Utime.Nano())
	sys := time.Duration(ru.Stime.Nano() - ru0.Stime.Nano())
	cpu := user + sys
	st := p.Stats()
	fmt.Fprintf(os.Stderr, "realab: batches %d, mean batch %.1f, queue-full waits %d\n", st.Batches, st.MeanBatchSize, st.QueueFullWaits)
	fmt.Fprintf(os.Stderr, "realab: measured pass: user %.3f s, sys %.3f s, %d minor faults, %d voluntary and %d involuntary context switches\n",
		user.Seconds(), sys.Seconds(), ru.Minflt-ru0.Minflt, ru.Nvcsw-ru0.Nvcsw, ru.Nivcsw-ru0.Nivcsw)
	fmt.Printf("msgs/s=%.0f elapsed_s=%.3f cpu_s=%.3f cpu_us_per_msg=%.3f delivered=%d failed=0 maxrss_mib=%d\n",
		float64(*count)/el.Seconds(), el.Seconds(), cpu.Seconds(), float64(cpu.Microseconds())/float64(*count), *count, ru.Maxrss>>10)
}
