package main

// Real-broker mode (-broker host:port): every throughput run gets a fresh topic with the run's partition
// count, created with the admin client and deleted afterwards, and every client runs in a process of its
// own: the Go clients in a child of this binary (-child), the Java producer (kafka-tools'
// ProducerPerformance) and the Python clients (bench/pyprod.py) as their runtimes. The child's peak RSS
// comes from wait4's rusage, the same way for all of them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// brokerClients are the rows of a real-broker run, in the order they take turns.
var brokerClients = []string{
	"raw confluent-kafka-go",
	"aio defaults Produce 1g",
	aioKeepMalloc,
	"aio defaults ProduceFunc 1g",
	"aio defaults ProduceBatch",
	"franz-go kgo",
	"C loop (librdkafka)",
	javaDefault,
	javaBig,
	pyAIO,
	pySync,
}

const (
	javaDefault = "Java producer (batch.size 16 KB)"
	javaBig     = "Java producer (batch.size 1 MB)"
	pyAIO       = "Python AIOProducer"
	pySync      = "Python sync Producer"
)

type brokerRun struct {
	bootstrap     string
	reps          int
	works         []workload
	only, clients string
	javaLibs      string
	python        string
	pyMax         int
	latency       bool
	loneN, rate   int
	rateDur       time.Duration
}

// result is one throughput run.
type result struct {
	count  int
	d      time.Duration
	allocs float64 // per message; -1 when not measured (Java, Python)
	rssMiB float64 // the client process's peak RSS
	// cpuUs is the client process's user+system CPU time over its whole life (start-up and the warm-up
	// pass included) per message produced (warm-up included), in µs.
	cpuUs float64
	// stats are the child's "STAT name value" lines (scale cells: aio's batches, latency percentiles,
	// memory readings).
	stats map[string]float64
}

// usage fills r's peak RSS and CPU per message from the finished process's rusage.
func (r *result) usage(ps *os.ProcessState, msgs int) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || runtime.GOOS != "linux" {
		return
	}
	r.rssMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	r.cpuUs = float64(cpu.Microseconds()) / float64(max(1, msgs))
}

func runBroker(br brokerRun) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	adm, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": br.bootstrap})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer adm.Close()
	tmp, err := os.MkdirTemp("", "aiobench")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	// Which rows can run here.
	java, _ := exec.LookPath("java")
	var names []string
	for _, name := range brokerClients {
		if !selected(name, br.only, br.clients) {
			continue
		}
		switch {
		case strings.HasPrefix(name, "Java"):
			if java == "" || br.javaLibs == "" || !hasJars(br.javaLibs) {
				fmt.Printf("> %s: skipped (java or the kafka-tools jars in -java-libs %q missing; `make bench-kafka` fetches them)\n\n", name, br.javaLibs)
				continue
			}
		case strings.HasPrefix(name, "Python"):
			if br.python == "" {
				fmt.Printf("> %s: skipped (no -python; `make bench-kafka` makes a venv with confluent-kafka)\n\n", name)
				continue
			}
			if err := exec.Command(br.python, "-c", "import confluent_kafka.aio").Run(); err != nil {
				fmt.Printf("> %s: skipped (%s cannot import confluent_kafka.aio: %v)\n\n", name, br.python, err)
				continue
			}
		}
		names = append(names, name)
	}
	pyScript := filepath.Join(sourceDir(), "pyprod.py")

	type key struct{ work, client string }
	res := map[key][]result{}
	runID := time.Now().Unix() % 100000
	seq := 0
	for rep := 1; rep <= br.reps; rep++ {
		for _, w := range br.works {
			pf := filepath.Join(tmp, fmt.Sprintf("payload-%d", w.size))
			if err := os.WriteFile(pf, payload(w.size), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			for _, name := range names {
				seq++
				t := fmt.Sprintf("bench-%d-%d", runID, seq)
				if err := createTopic(adm, t, w.partitions); err != nil {
					fmt.Fprintf(os.Stderr, "rep %d %s %s: create topic: %v\n", rep, w, name, err)
					continue
				}
				var r result
				var err error
				switch {
				case strings.HasPrefix(name, "Java"):
					r, err = runJava(java, br.javaLibs, br.bootstrap, t, w, pf, name == javaBig)
				case strings.HasPrefix(name, "Python"):
					pw := w
					pw.count = min(w.count, br.pyMax)
					pw.warm = min(w.warm, pw.count/10)
					mode := "aio"
					if name == pySync {
						mode = "sync"
					}
					r, err = runPython(br.python, pyScript, mode, br.bootstrap, t, pw, pf)
				default:
					r, err = runGoChild(self, name, br.bootstrap, t, w)
				}
				deleteTopic(adm, t)
				if err != nil {
					fmt.Fprintf(os.Stderr, "rep %d %s %s: %v\n", rep, w, name, err)
					continue
				}
				k := key{w.String(), name}
				res[k] = append(res[k], r)
				fmt.Fprintf(os.Stderr, "rep %d %-16s %-34s %10.0f msgs/s  rss %6.1f MiB  cpu %5.2f µs/msg  load %s\n", rep, w, name,
					float64(r.count)/r.d.Seconds(), r.rssMiB, r.cpuUs, loadavg())
			}
		}
	}

	fmt.Printf("## Throughput against a real broker (%s), median of %d reps\n\n", br.bootstrap, br.reps)
	fmt.Printf("Load average at the end of the throughput runs: %s\n\n", loadavg())
	rate := func(k key) float64 {
		var xs []float64
		for _, r := range res[k] {
			xs = append(xs, float64(r.count)/r.d.Seconds())
		}
		return median(xs)
	}
	for _, w := range br.works {
		ws := w.String()
		fmt.Printf("### real Kafka, %s, %d partition(s), %d messages per run (Python: %d)\n\n", ws, w.partitions, w.count, min(w.count, br.pyMax))
		fmt.Println("| client | msgs/s | MB/s | peak RSS MiB | client CPU µs/msg | allocs/msg | × raw | × C loop | × franz-go | × Java | × Py AIO | reps |")
		fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		raw := rate(key{ws, "raw confluent-kafka-go"})
		cl := rate(key{ws, "C loop (librdkafka)"})
		fr := rate(key{ws, "franz-go kgo"})
		jv := rate(key{ws, javaDefault})
		py := rate(key{ws, pyAIO})
		for _, name := range names {
			k := key{ws, name}
			if len(res[k]) == 0 {
				continue
			}
			m := rate(k)
			var rss, al, cpu []float64
			for _, r := range res[k] {
				rss = append(rss, r.rssMiB)
				al = append(al, r.allocs)
				cpu = append(cpu, r.cpuUs)
			}
			alloc := "-"
			if a := median(al); a >= 0 {
				alloc = fmt.Sprintf("%.3f", a)
			}
			fmt.Printf("| %s | %.0f | %.1f | %.0f | %.2f | %s | %s | %s | %s | %s | %s | %d |\n", name, m, m*float64(w.size)/1e6,
				median(rss), median(cpu), alloc, ratio(m, raw), ratio(m, cl), ratio(m, fr), ratio(m, jv), ratio(m, py), len(res[k]))
		}
		fmt.Println()
	}
	if br.latency {
		brokerLatency(adm, br)
	}
	return 0
}

// brokerLatency runs the lone-message latency (linger.ms 0 and 5) and the fixed-rate latency of the Go
// clients in this process, each on a fresh one-partition topic, interleaved over the reps.
func brokerLatency(adm *kafka.AdminClient, br brokerRun) {
	kinds := []string{"lone0", "lone", "rate"}
	latRes := latencies{}
	val := payload(100)
	seq := 0
	for rep := 1; rep <= br.reps; rep++ {
		for _, lc := range lats {
			if !selected(lc.name, br.only, br.clients) {
				continue
			}
			for _, kind := range kinds {
				seq++
				topic = fmt.Sprintf("bench-lat-%d-%d", time.Now().Unix()%100000, seq)
				if err := createTopic(adm, topic, 1); err != nil {
					fmt.Fprintf(os.Stderr, "latency: create topic: %v\n", err)
					continue
				}
				lat, err := latencyRun(lc, br.bootstrap, kind, val, br.loneN, br.rate, br.rateDur)
				deleteTopic(adm, topic)
				latRes.add(rep, kind, lc.name, lat, err)
			}
		}
	}
	fmt.Printf("### real Kafka, latency produce→delivered, 100 B, uncompressed, 1 partition (median over %d reps of each rep's percentile; lone: %d messages one at a time)\n\n", br.reps, br.loneN)
	fmt.Printf("| client | lone p50, linger 0 | lone p99, linger 0 | lone p50, linger 5 | lone p99, linger 5 | %d msg/s p50 | %d msg/s p99 |\n", br.rate, br.rate)
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, lc := range lats {
		row := []string{lc.name}
		for _, kind := range kinds {
			var p50, p99 []float64
			for _, r := range latRes[latKey{kind, lc.name}] {
				p50 = append(p50, float64(r[0]))
				p99 = append(p99, float64(r[1]))
			}
			row = append(row, fmtDur(median(p50)), fmtDur(median(p99)))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	fmt.Println()
}

func createTopic(adm *kafka.AdminClient, name string, partitions int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := adm.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			return r.Error
		}
	}
	// CreateTopics returns once the controller has it; wait until the broker serves every partition's
	// leader so that no client's first pass pays for the topic's creation.
	for {
		md, err := adm.GetMetadata(&name, false, 5000)
		if err == nil {
			if t, ok := md.Topics[name]; ok && t.Error.Code() == kafka.ErrNoError && len(t.Partitions) == partitions {
				ready := true
				for _, p := range t.Partitions {
					ready = ready && p.Leader >= 0 && p.Error.Code() == kafka.ErrNoError
				}
				if ready {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("topic %s not ready: %v", name, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deleteTopic(adm *kafka.AdminClient, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopics(ctx, []string{name}); err != nil {
		fmt.Fprintf(os.Stderr, "delete topic %s: %v\n", name, err)
	}
}

// runChild is the -child side: one Go client, one throughput run, the result on stdout.
func runChild(name, bootstrap, spec string) int {
	c, ok := goClient(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown client %q\n", name)
		return 2
	}
	f := strings.Split(spec, ",")
	if len(f) != 5 && len(f) != 6 {
		fmt.Fprintf(os.Stderr, "bad -child-spec %q\n", spec)
		return 2
	}
	if len(f) == 6 { // a sixth field: create the topic with that many partitions first (profiling runs)
		n, _ := strconv.Atoi(f[5])
		adm, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
		if err == nil {
			err = createTopic(adm, f[0], n)
			adm.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "create topic:", err)
			return 1
		}
	}
	topic = f[0]
	var w workload
	w.size, _ = strconv.Atoi(f[1])
	w.comp = f[2]
	w.count, _ = strconv.Atoi(f[3])
	w.warm, _ = strconv.Atoi(f[4])
	d, m, err := c.run(bootstrap, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("RESULT %d %d\n", d.Nanoseconds(), m)
	return 0
}

func runGoChild(self, name, bootstrap, t string, w workload) (result, error) {
	spec := fmt.Sprintf("%s,%d,%s,%d,%d", t, w.size, w.comp, w.count, w.warm)
	r, err := runProc(exec.Command(self, "-child", name, "-broker", bootstrap, "-child-spec", spec), w.count, w.count+w.warm)
	if err == nil {
		r.allocs /= float64(w.count)
	}
	return r, err
}

func runPython(python, script, mode, bootstrap, t string, w workload, payloadFile string) (result, error) {
	r, err := runProc(exec.Command(python, script, mode, bootstrap, t, w.comp, strconv.Itoa(w.count), strconv.Itoa(w.warm), payloadFile), w.count, w.count+w.warm)
	r.allocs = -1
	return r, err
}

// runProc runs cmd, which prints "RESULT <ns> <mallocs>" after producing msgs messages (count of them
// measured), and takes its peak RSS and CPU time from the rusage.
func runProc(cmd *exec.Cmd, count, msgs int) (result, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var r result
	r.count = count
	if cmd.ProcessState != nil {
		r.usage(cmd.ProcessState, msgs)
	}
	if err != nil {
		return r, fmt.Errorf("%v: %s", err, lastLines(errb.String(), 5))
	}
	sc := bufio.NewScanner(&out)
	found := false
	for sc.Scan() {
		found = scanResult(&r, sc.Text()) || found
	}
	if found {
		return r, nil
	}
	return r, fmt.Errorf("no RESULT line: %s", lastLines(out.String()+errb.String(), 5))
}

// javaSteady matches ProducerPerformance's steady-state summary (the records after --warmup-records):
// "N steady state records sent, X records/sec (Y MB/sec), ...".
var javaSteady = regexp.MustCompile(`(\d+) steady state records sent, ([0-9.]+) records/sec`)

// runJava runs kafka-tools' ProducerPerformance (what kafka-producer-perf-test.sh runs) with w.warm
// warm-up records, then w.count measured, the same bytes as the other clients (--payload-file) and the
// same settings; batch.size is the Java default (16 KB) unless big, which sets 1 MB.
func runJava(java, libs, bootstrap, t string, w workload, payloadFile string, big bool) (result, error) {
	props := []string{"acks=all", "enable.idempotence=true", "linger.ms=5", "compression.type=" + w.comp}
	if big {
		props = append(props, "batch.size=1048576")
	}
	args := []string{"-cp", filepath.Join(libs, "*"), "org.apache.kafka.tools.ProducerPerformance",
		"--bootstrap-server", bootstrap, "--topic", t, "--num-records", strconv.Itoa(w.count + w.warm),
		"--throughput", "-1", "--payload-file", payloadFile, "--payload-delimiter", "#"} // the payload is letters only: one record
	if w.warm > 0 {
		args = append(args, "--warmup-records", strconv.Itoa(w.warm))
	}
	args = append(args, "--command-property")
	args = append(args, props...)
	var out, errb bytes.Buffer
	cmd := exec.Command(java, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var r result
	r.allocs = -1
	if cmd.ProcessState != nil {
		r.usage(cmd.ProcessState, w.count+w.warm)
	}
	if err != nil {
		return r, fmt.Errorf("java: %v: %s", err, lastLines(out.String()+errb.String(), 5))
	}
	m := javaSteady.FindStringSubmatch(out.String())
	if m == nil {
		if w.warm > 0 {
			return r, fmt.Errorf("java: no steady-state line: %s", lastLines(out.String(), 3))
		}
		m = regexp.MustCompile(`(\d+) records sent, ([0-9.]+) records/sec`).FindStringSubmatch(out.String())
		if m == nil {
			return r, errors.New("java: no summary line: " + lastLines(out.String(), 3))
		}
	}
	n, _ := strconv.Atoi(m[1])
	rate, _ := strconv.ParseFloat(m[2], 64)
	if n == 0 || rate == 0 {
		return r, errors.New("java: zero records: " + m[0])
	}
	r.count = n
	r.d = time.Duration(float64(n) / rate * float64(time.Second))
	return r, nil
}

func hasJars(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "kafka-tools-*.jar"))
	return len(m) > 0
}

// sourceDir is where pyprod.py lives: next to the binary's source, found from the working directory
// (bench/ or the repository root) or AIOBENCH_DIR.
func sourceDir() string {
	for _, d := range []string{os.Getenv("AIOBENCH_DIR"), ".", "bench"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pyprod.py")); err == nil {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	return "."
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
