package main

// SCALE cells against a real broker (-broker with -scale): how the clients fare as the number of
// topics, partitions, keys and producing goroutines grows, and what a producer keeps after it has
// written to many topics (churn).
//
//	topics      200 B messages round-robin over 1, 100, 1,000 and 10,000 one-partition topics
//	partitions  keyed 200 B messages (100,000 distinct keys) to one topic of 1,000 partitions
//	goroutines  1, 64 and 256 producing goroutines on one topic of 6 partitions, with each message's
//	            produce→delivered time (p50, p99)
//	churn       aio defaults and raw confluent-kafka-go each write 100 messages to each of 20,000
//	            topics in turn; Go heap, C heap and RSS before, right after, and after an idle minute
//	stuck       3 brokers of a cluster of its own, one SIGSTOPped 30 s under unkeyed load at a fixed
//	            rate: delivery to the other brokers' partitions before, during and after (stuck.go)
//
// Each cell's topics are created up front with the admin client, in chunks (topic auto-creation is off
// on the test brokers), primed (primeTopics), shared by the cell's runs, and deleted after them; churn
// keeps a window of topics alive as its clients go (churn.go), and stuck has a cluster and topics of its
// own (stuck.go). Every client runs in a child
// process of its own (-child NAME -scale-spec JSON), as the other real-broker rows do; the clients of a
// cell take turns, rep after rep.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The rows of the scale cells.
const (
	scRaw   = "raw confluent-kafka-go"
	scAio   = "aio defaults Produce"
	scFranz = "franz-go kgo"
	scC     = "C loop (librdkafka)"
)

var scaleRows = []string{scRaw, scAio, scFranz, scC}

// scaleKinds are the cells -scale can name, in the order they run.
var scaleKinds = []string{"topics", "partitions", "goroutines", "churn", "stuck"}

// scaleSpec is one child run of a scale cell, passed to the child as JSON (-scale-spec).
type scaleSpec struct {
	Kind   string `json:"kind"`   // topics, partitions, goroutines or churn
	Prefix string `json:"prefix"` // the topics are Prefix-0 .. Prefix-(Topics-1)
	Topics int    `json:"topics"`
	Size   int    `json:"size"`
	Count  int    `json:"count"` // messages of the measured pass
	Warm   int    `json:"warm"`  // messages of the warm-up pass before it, on the same client
	// Keys is the number of distinct keys, message i getting key i % Keys; 0: no key.
	Keys int `json:"keys,omitempty"`
	// Goroutines producing at once (1 unless the goroutines cell); Latency: time every message.
	Goroutines int  `json:"goroutines,omitempty"`
	Latency    bool `json:"latency,omitempty"`
	// churn: messages per topic, and how long to idle before the last memory reading.
	PerTopic int           `json:"per_topic,omitempty"`
	Idle     time.Duration `json:"idle,omitempty"`
	// stuck: the offered rate (messages a second), the file the child writes its records to, and how
	// long the run is meant to last (to size the records).
	Rate int           `json:"rate,omitempty"`
	Out  string        `json:"out,omitempty"`
	For  time.Duration `json:"for,omitempty"`
}

func (s scaleSpec) topicName(i int) string { return fmt.Sprintf("%s-%d", s.Prefix, i) }

func (s scaleSpec) topicNames() []string {
	names := make([]string, s.Topics)
	for i := range names {
		names[i] = s.topicName(i)
	}
	return names
}

// scaleKeyLen is the length of every key: "k" and 7 digits.
const scaleKeyLen = 8

// scaleKeys returns n keys of scaleKeyLen bytes one after the other: key j is keys[j*8 : j*8+8].
func scaleKeys(n int) []byte {
	b := make([]byte, 0, n*scaleKeyLen)
	for j := range n {
		b = fmt.Appendf(b, "k%07d", j)
	}
	return b
}

type scaleConfig struct {
	bootstrap     string
	reps          int
	only, clients string
	kinds         map[string]bool
	size          int
	count, warm   int
	topics        []int
	partitions    int
	keys          int
	goroutines    []int
	gParts        int
	churnTopics   int
	churnMsgs     int
	churnIdle     time.Duration
	churnWindow   int // churn: topics alive at once at most
	chunk         int
	primeBytes    int // per partition, before a cell's runs
	stuck         stuckConfig
}

// scaleCell is one cell: its topics and the runs on them.
type scaleCell struct {
	kind       string
	label      string // the cell's value in its table's first column
	spec       scaleSpec
	partitions int // of each topic
	rows       []string
}

func parseInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func (sc scaleConfig) cells() []scaleCell {
	base := scaleSpec{Size: sc.size, Count: sc.count, Warm: sc.warm, Goroutines: 1}
	var cells []scaleCell
	if sc.kinds["topics"] {
		for _, n := range sc.topics {
			s := base
			s.Kind, s.Topics = "topics", n
			cells = append(cells, scaleCell{kind: "topics", label: strconv.Itoa(n), spec: s, partitions: 1, rows: scaleRows})
		}
	}
	if sc.kinds["partitions"] {
		s := base
		s.Kind, s.Topics, s.Keys = "partitions", 1, sc.keys
		cells = append(cells, scaleCell{kind: "partitions", label: strconv.Itoa(sc.partitions), spec: s, partitions: sc.partitions, rows: scaleRows})
	}
	if sc.kinds["goroutines"] {
		for _, g := range sc.goroutines {
			s := base
			s.Kind, s.Topics, s.Goroutines, s.Latency = "goroutines", 1, g, true
			rows := scaleRows
			if g > 1 { // the C loop is one thread: it has a 1-goroutine row only
				rows = []string{scRaw, scAio, scFranz}
			}
			cells = append(cells, scaleCell{kind: "goroutines", label: strconv.Itoa(g), spec: s, partitions: sc.gParts, rows: rows})
		}
	}
	if sc.kinds["churn"] {
		s := scaleSpec{Kind: "churn", Topics: sc.churnTopics, Size: sc.size, PerTopic: sc.churnMsgs, Idle: sc.churnIdle}
		s.Count = s.Topics * s.PerTopic
		cells = append(cells, scaleCell{kind: "churn", label: strconv.Itoa(sc.churnTopics), spec: s, partitions: 1, rows: []string{scAio, scRaw}})
	}
	if sc.kinds["stuck"] { // its own cluster and topics: runStuck
		cells = append(cells, scaleCell{kind: "stuck", label: "3 brokers", partitions: sc.stuck.parts, rows: stuckRows})
	}
	return cells
}

// cellResult holds a cell's runs by row, and how long its topics took to create.
type cellResult struct {
	runs    map[string][]result
	created time.Duration
	primed  time.Duration
	skipped string // why the cell did not run
	stuck   *stuckResult
}

func runScale(sc scaleConfig) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	adm, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": sc.bootstrap})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer adm.Close()
	cells := sc.cells()
	results := make([]cellResult, len(cells))
	runID := time.Now().Unix() % 100000
	var lastDel time.Time // the last delete of a cell's topics, and how many partitions it deleted
	var lastDelParts int
	// A deleted partition keeps its file open until the broker removes it, file.delete.delay.ms after
	// the delete (Kafka's default 60 s; bench-kafka.sh sets 1 s with -scale).
	delDelay := time.Minute
	if v, err := brokerConfig(adm, "file.delete.delay.ms"); err == nil {
		if ms, err := strconv.Atoi(v); err == nil {
			delDelay = time.Duration(ms) * time.Millisecond
		}
	}
	for ci, c := range cells {
		cr := &results[ci]
		cr.runs = map[string][]result{}
		var rows []string
		for _, r := range c.rows {
			if selected(r, sc.only, sc.clients) {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		if c.kind == "stuck" {
			cr.stuck = runStuck(sc, rows)
			continue
		}
		need := c.spec.Topics * c.partitions
		if c.kind == "churn" { // a window of its topics exists at a time
			need = min(need, (sc.churnWindow+sc.chunk)*c.partitions)
		}
		if n := brokerNofile(); n > 0 && lastDelParts > 0 && lastDelParts+need+nofileSpare > n {
			if wait := time.Until(lastDel.Add(delDelay + 10*time.Second)); wait > 0 {
				fmt.Fprintf(os.Stderr, "scale %s %s: waiting %.0f s for the broker to close the %d deleted partitions' files\n", c.kind, c.label, wait.Seconds(), lastDelParts)
				time.Sleep(wait)
			}
		}
		if why := brokerCanHold(need); why != "" {
			cr.skipped = why
			fmt.Fprintf(os.Stderr, "scale %s %s: skipped: %s\n", c.kind, c.label, why)
			continue
		}
		c.spec.Prefix = fmt.Sprintf("bench-s%d-%s%s", runID, c.kind[:1], c.label)
		if c.kind == "churn" {
			for _, row := range rows {
				r, err := runChurnClient(self, sc.bootstrap, adm, sc, c.spec, row)
				lastDel, lastDelParts = time.Now(), need
				if err != nil {
					fmt.Fprintf(os.Stderr, "scale churn %s %s: %v\n", c.label, row, err)
					continue
				}
				cr.runs[row] = append(cr.runs[row], r)
				fmt.Fprintf(os.Stderr, "scale churn %s %-24s %.1f s (waited for topics %.1f s)  rss %.1f→%.1f→%.1f MiB  load %s\n", c.label, row, r.d.Seconds(),
					time.Duration(r.stats["waited"]).Seconds(), r.stats["before_rss"]/(1<<20), r.stats["after_rss"]/(1<<20), r.stats["idle_rss"]/(1<<20), loadavg())
			}
			continue
		}
		names := c.spec.topicNames()
		t0 := time.Now()
		if err := createTopics(adm, names, c.partitions, sc.chunk); err != nil {
			cr.skipped = "creating the topics failed: " + err.Error()
			fmt.Fprintf(os.Stderr, "scale %s %s: create topics: %v\n", c.kind, c.label, err)
			deleteTopics(adm, names, sc.chunk)
			lastDel, lastDelParts = time.Now(), need
			continue
		}
		cr.created = time.Since(t0)
		t0 = time.Now()
		per := sc.primeBytes / max(1, c.spec.Size)
		if err := primeTopics(sc.bootstrap, names, c.partitions, per, c.spec.Size); err != nil {
			cr.skipped = "priming the topics failed: " + err.Error()
			fmt.Fprintf(os.Stderr, "scale %s %s: prime topics: %v\n", c.kind, c.label, err)
			deleteTopics(adm, names, sc.chunk)
			lastDel, lastDelParts = time.Now(), need
			continue
		}
		cr.primed = time.Since(t0)
		fmt.Fprintf(os.Stderr, "scale %s %s: %d topic(s) of %d partition(s) created in %.1f s, primed in %.1f s\n",
			c.kind, c.label, len(names), c.partitions, cr.created.Seconds(), cr.primed.Seconds())
		for rep := 1; rep <= sc.reps; rep++ {
			for _, row := range rows {
				r, err := runScaleChild(self, row, sc.bootstrap, c.spec)
				if err != nil {
					fmt.Fprintf(os.Stderr, "scale rep %d %s %s %s: %v\n", rep, c.kind, c.label, row, err)
					continue
				}
				cr.runs[row] = append(cr.runs[row], r)
				extra := ""
				if b, ok := r.stats["batches"]; ok {
					extra += fmt.Sprintf("  %.1f msgs/engine call (%.0f calls)", r.stats["meanbatch"], b)
				}
				if p, ok := r.stats["p99"]; ok {
					extra += fmt.Sprintf("  p50 %s p99 %s", fmtDur(r.stats["p50"]), fmtDur(p))
				}
				fmt.Fprintf(os.Stderr, "scale rep %d %-10s %-6s %-24s %10.0f msgs/s  rss %6.1f MiB  cpu %5.2f µs/msg%s  load %s\n",
					rep, c.kind, c.label, row, float64(r.count)/r.d.Seconds(), r.rssMiB, r.cpuUs, extra, loadavg())
			}
		}
		t1 := time.Now()
		deleteTopics(adm, names, sc.chunk)
		lastDel, lastDelParts = time.Now(), need
		fmt.Fprintf(os.Stderr, "scale %s %s: topics deleted in %.1f s\n", c.kind, c.label, time.Since(t1).Seconds())
	}
	printScale(sc, cells, results)
	return 0
}

// runScaleChild runs one row of a scale cell in a child process and reads its result.
func runScaleChild(self, row, bootstrap string, s scaleSpec) (result, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return result{}, err
	}
	r, err := runProc(exec.Command(self, "-child", row, "-broker", bootstrap, "-scale-spec", string(js)), s.Count, s.Count+s.Warm)
	if err == nil {
		r.allocs /= float64(max(1, s.Count))
		if hwm, ok := r.stats["hwm"]; ok { // the child's own peak, without the parent's (peakRSSBytes)
			r.rssMiB = hwm / (1 << 20)
		}
	}
	return r, err
}

// nofileSpare is the open files a broker needs besides one per partition: its jars, sockets and
// metadata log (a fresh broker here: about 50).
const nofileSpare = 1024

// brokerNofile is the broker's open-file limit when bench-kafka.sh started it (AIOBENCH_BROKER_NOFILE,
// from its /proc/PID/limits), or 0.
func brokerNofile() int {
	n, _ := strconv.Atoi(os.Getenv("AIOBENCH_BROKER_NOFILE"))
	return n
}

// brokerCanHold says why a broker on this machine cannot hold partitions more partitions, or "" if it
// can or there is no telling. A Kafka broker keeps one file open per partition (its active segment;
// measured: 1,000 one-partition topics took 940 more) and maps two index files per partition
// (vm.max_map_count; measured: 1,882 more maps).
func brokerCanHold(partitions int) string {
	n := brokerNofile()
	if n <= 0 {
		return ""
	}
	if partitions+nofileSpare > n {
		return fmt.Sprintf("the broker may keep %d files open (its RLIMIT_NOFILE) and needs one per partition: %d partitions + %d spare do not fit; lower the count or raise `ulimit -n` before the broker starts", n, partitions, nofileSpare)
	}
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && 2*partitions+4*nofileSpare > m {
			return fmt.Sprintf("vm.max_map_count is %d and the broker maps two index files per partition: %d partitions do not fit", m, partitions)
		}
	}
	return ""
}

// createTopics creates names with partitions partitions each, chunk topics per request, and waits
// until the broker serves a leader for every partition of each chunk.
func createTopics(adm *kafka.AdminClient, names []string, partitions, chunk int) error {
	if len(names) == 1 {
		return createTopic(adm, names[0], partitions)
	}
	chunk = max(1, chunk)
	for lo := 0; lo < len(names); lo += chunk {
		part := names[lo:min(lo+chunk, len(names))]
		specs := make([]kafka.TopicSpecification, len(part))
		for i, n := range part {
			specs[i] = kafka.TopicSpecification{Topic: n, NumPartitions: partitions, ReplicationFactor: 1}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		rs, err := adm.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(2*time.Minute))
		if err == nil {
			for _, r := range rs {
				if r.Error.Code() != kafka.ErrNoError {
					err = fmt.Errorf("%s: %v", r.Topic, r.Error)
					break
				}
			}
		}
		if err == nil {
			err = waitTopicsReady(ctx, adm, part, partitions)
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitTopicsReady polls DescribeTopics until every partition of names has a leader.
func waitTopicsReady(ctx context.Context, adm *kafka.AdminClient, names []string, partitions int) error {
	pending := names
	for {
		res, err := adm.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames(pending))
		if err == nil {
			var still []string
			for _, d := range res.TopicDescriptions {
				ready := d.Error.Code() == kafka.ErrNoError && len(d.Partitions) == partitions
				for _, p := range d.Partitions {
					ready = ready && p.Leader != nil
				}
				if !ready {
					still = append(still, d.Name)
				}
			}
			if len(still) == 0 {
				return nil
			}
			pending = still
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d topic(s) not ready (%s, ...): %v", len(pending), pending[0], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newPrimer is the harness's own producer that writes the priming messages of new topics: acks=all,
// idempotent, linger.ms 5, no report fields, and time enough for a loaded broker.
func newPrimer(bootstrap string) (*kafka.Producer, error) {
	return kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": true, "linger.ms": 5,
		"go.delivery.report.fields": "none", "message.timeout.ms": 600_000,
	})
}

// primeTopics writes to every partition of names, in two rounds, so that no measured client pays for
// the partitions being new: per messages of size bytes each (at least enough for 8 KiB), then, once
// those are delivered, one more. On the 2-core VM (ext4) a new partition costs the broker, besides
// making its log (20 to 40 a second; until then the metadata already names a leader, what
// createTopics waits for, but a write fails with NOT_LEADER_OR_FOLLOWER and the client retries and
// refreshes its metadata):
//   - on its first append, its leader-epoch checkpoint file, and
//   - on the first append that finds more than index.interval.bytes (4 KiB) written since the last
//     index entry, the first touch of its memory-mapped offset and time indexes (preallocated sparse
//     files): a page fault that reads ahead and zeroes a large folio.
//
// Unprimed, 1,000 fresh partitions took the broker 5.9 s of system time during the first client's run
// of 40k keyed messages and 2.9 s during the second's, against 0.2 s in the third; the first ran at a
// tenth of the third's speed whichever client it was. With one priming message per partition, the
// second client on churn's topics (the first to append past 4 KiB) ran at a tenth of the first's.
func primeTopics(bootstrap string, names []string, partitions, per, size int) error {
	size = max(1, size)
	per = max(per, (8<<10+size-1)/size)
	kp, err := newPrimer(bootstrap)
	if err != nil {
		return err
	}
	defer kp.Close()
	val := payload(size)
	for _, rounds := range []int{per, 1} {
		if err := primeRound(kp, names, partitions, rounds, val); err != nil {
			return err
		}
	}
	return nil
}

// primeRound writes per messages of val to every partition of names, round-robin over the topics and
// then their partitions, and waits until each is delivered.
func primeRound(kp *kafka.Producer, names []string, partitions, per int, val []byte) error {
	n := len(names) * partitions * per
	errc := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var first error
		for k := 0; k < n; {
			select {
			case ev := <-kp.Events():
				if m, ok := ev.(*kafka.Message); ok {
					if m.TopicPartition.Error != nil && first == nil {
						first = fmt.Errorf("%s: %v", m.TopicPartition, m.TopicPartition.Error)
					}
					k++
				}
			case <-stop:
				return
			}
		}
		errc <- first
	}()
	for k := range n {
		i, p := k%len(names), int32((k/len(names))%partitions)
		for {
			err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &names[i], Partition: p}, Value: val}, nil)
			if err == nil {
				break
			}
			if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	return <-errc
}

// deleteTopics deletes names, chunk topics per request.
func deleteTopics(adm *kafka.AdminClient, names []string, chunk int) {
	chunk = max(1, chunk)
	for lo := 0; lo < len(names); lo += chunk {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if _, err := adm.DeleteTopics(ctx, names[lo:min(lo+chunk, len(names))], kafka.SetAdminOperationTimeout(time.Minute)); err != nil {
			fmt.Fprintf(os.Stderr, "delete topics %s...: %v\n", names[lo], err)
		}
		cancel()
	}
}

// ---- tables ----

func printScale(sc scaleConfig, cells []scaleCell, results []cellResult) {
	fmt.Printf("## SCALE cells against a real broker (%s)\n\n", sc.bootstrap)
	fmt.Printf("Load average at the end of the scale runs: %s. %d B values, uncompressed, acks=all, idempotent, linger.ms 5; "+
		"every client in a child process of its own; client CPU is user+sys of that process over its whole life "+
		"(start-up and warm-up included) per message it sent (wait4's rusage); peak RSS is the child's own VmHWM at its end "+
		"(wait4's ru_maxrss would be at least this harness's own peak RSS: Linux carries the pre-exec high-water mark over exec, "+
		"and Go starts children with vfork semantics). aio: `aioproducer.New` with no option, "+
		"Produce + Future from each goroutine, holding at most %d Futures (all goroutines together); "+
		"msgs/engine call and engine calls are Stats().MeanBatchSize and Batches over the measured pass. "+
		"Every client allocates one message value per message (aio: *Message, raw: *kafka.Message, franz-go: *kgo.Record).\n\n",
		loadavg(), sc.size, aioWindow)
	byKind := map[string][]int{}
	for i, c := range cells {
		byKind[c.kind] = append(byKind[c.kind], i)
	}
	for _, kind := range scaleKinds {
		idx := byKind[kind]
		if len(idx) == 0 {
			continue
		}
		c0 := cells[idx[0]]
		switch kind {
		case "topics":
			fmt.Printf("### real Kafka, SCALE topics: %d B round-robin over N one-partition topics, %d messages per run after %d of warm-up, median of %d reps\n\n",
				sc.size, c0.spec.Count, c0.spec.Warm, sc.reps)
		case "partitions":
			fmt.Printf("### real Kafka, SCALE partitions: %d B with %d distinct keys (message i: key i mod %d) to one topic of N partitions, %d messages per run after %d of warm-up, median of %d reps\n\n",
				sc.size, sc.keys, sc.keys, c0.spec.Count, c0.spec.Warm, sc.reps)
			fmt.Println("Partitioners: librdkafka's default (consistent_random, CRC32 of the key) for raw, aio and the C loop; franz-go's default (sticky key partitioner, murmur2 of the key).")
			fmt.Println()
		case "goroutines":
			fmt.Printf("### real Kafka, SCALE goroutines: %d B unkeyed from N goroutines to one topic of %d partitions, %d messages per run after %d of warm-up, median of %d reps\n\n",
				sc.size, c0.partitions, c0.spec.Count, c0.spec.Warm, sc.reps)
			fmt.Println("Latency is produce→delivered of every message of the measured pass, at full load (every client as fast as it goes, so it mostly shows how deep each client queues): " +
				"raw passes a pointer to the message's slot as Opaque (kept in confluent-kafka-go's map until the report); franz-go reads the time from a field next to the *kgo.Record; " +
				"aio has one waiter goroutine per producing goroutine that waits for its Futures in produce order (its window), so a message delivered before an earlier one counts until the earlier one is done (an upper bound); " +
				"the C loop (one thread, 1-goroutine row only) stamps each message and reads the clock once per delivery event. p50 and p99: median over reps of each rep's percentile. " +
				"Every client reads the clock once per message here, so compare these rows with each other, not with the other cells.")
			fmt.Println()
		case "churn":
			printChurn(sc, cells[idx[0]], results[idx[0]])
			continue
		case "stuck":
			if r := results[idx[0]].stuck; r != nil {
				printStuck(sc, r)
			}
			continue
		}
		printScaleTable(kind, cells, results, idx)
	}
}

func printScaleTable(kind string, cells []scaleCell, results []cellResult, idx []int) {
	col := map[string]string{"topics": "topics", "partitions": "partitions", "goroutines": "goroutines"}[kind]
	lat := kind == "goroutines"
	head := "| " + col + " | client | msgs/s | MB/s | peak RSS MiB | client CPU µs/msg | allocs/msg |"
	sep := "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
	if lat {
		head += " p50 | p99 |"
		sep += " ---: | ---: |"
	}
	head += " aio msgs/engine call | aio engine calls | × raw | × C loop | × franz-go | reps |"
	sep += " ---: | ---: | ---: | ---: | ---: | ---: |"
	fmt.Println(head)
	fmt.Println(sep)
	var notes []string
	for _, i := range idx {
		c, cr := cells[i], results[i]
		if cr.skipped != "" {
			notes = append(notes, fmt.Sprintf("%s %s: skipped: %s", col, c.label, cr.skipped))
			continue
		}
		if cr.created > 0 {
			notes = append(notes, fmt.Sprintf("%s %s: %d topic(s) of %d partition(s) created in %.1f s, primed in %.1f s",
				col, c.label, c.spec.Topics, c.partitions, cr.created.Seconds(), cr.primed.Seconds()))
		}
		rate := func(row string) float64 {
			var xs []float64
			for _, r := range cr.runs[row] {
				xs = append(xs, float64(r.count)/r.d.Seconds())
			}
			return median(xs)
		}
		raw, cl, fr := rate(scRaw), rate(scC), rate(scFranz)
		for _, row := range c.rows {
			rs := cr.runs[row]
			if len(rs) == 0 {
				continue
			}
			stat := func(f func(r result) float64) float64 {
				var xs []float64
				for _, r := range rs {
					xs = append(xs, f(r))
				}
				return median(xs)
			}
			m := rate(row)
			line := fmt.Sprintf("| %s | %s | %.0f | %.1f | %.0f | %.2f | %.3f |", c.label, row, m, m*float64(c.spec.Size)/1e6,
				stat(func(r result) float64 { return r.rssMiB }), stat(func(r result) float64 { return r.cpuUs }),
				stat(func(r result) float64 { return r.allocs }))
			if lat {
				line += fmt.Sprintf(" %s | %s |", fmtDur(stat(func(r result) float64 { return r.stats["p50"] })),
					fmtDur(stat(func(r result) float64 { return r.stats["p99"] })))
			}
			batch, calls := "-", "-"
			if _, ok := rs[0].stats["batches"]; ok {
				batch = fmt.Sprintf("%.1f", stat(func(r result) float64 { return r.stats["meanbatch"] }))
				calls = fmt.Sprintf("%.0f", stat(func(r result) float64 { return r.stats["batches"] }))
			}
			line += fmt.Sprintf(" %s | %s | %s | %s | %s | %d |", batch, calls, ratio(m, raw), ratio(m, cl), ratio(m, fr), len(rs))
			fmt.Println(line)
		}
	}
	fmt.Println()
	for _, n := range notes {
		fmt.Printf("- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Println()
	}
}

func printChurn(sc scaleConfig, c scaleCell, cr cellResult) {
	s := c.spec
	fmt.Printf("### real Kafka, SCALE churn: %d messages of %d B to each of %d one-partition topics in turn, then every delivery awaited; memory before, right after, and after %v idle\n\n",
		s.PerTopic, s.Size, s.Topics, s.Idle)
	fmt.Printf("Command: `%s`\n\n", benchCommand())
	if cr.skipped != "" {
		fmt.Printf("Skipped: %s\n\n", cr.skipped)
		return
	}
	fmt.Printf("Each client gets %d topics of its own, aio first; one run per client. At most %d of them exist on the broker at a time (its open-file limit: one file per partition): "+
		"the harness creates them ahead of the client in chunks of %d (each chunk awaited until every partition has a leader, then primed with one message, so that its log exists) "+
		"and deletes, in chunks, those the client reports fully delivered; the client produces to a topic only once the harness has said it exists (\"waited for topics\" below). "+
		"So the broker has deleted every topic before the idle time starts. "+
		"\"before\" is after the client delivered one message to the first topic. "+
		"Go heap: runtime.ReadMemStats HeapInuse after runtime.GC; C heap: glibc mallinfo2 uordblks+hblkhd (all arenas); RSS from /proc/self/statm. "+
		"The producer stays open through the idle time. raw confluent-kafka-go keeps a topic handle per topic name for its life.\n\n",
		s.Topics, sc.churnWindow, sc.chunk)
	fmt.Println("| client | phase | Go heap MiB | C heap MiB | RSS MiB |")
	fmt.Println("| --- | --- | ---: | ---: | ---: |")
	var lines []string
	for _, row := range c.rows {
		rs := cr.runs[row]
		if len(rs) == 0 {
			continue
		}
		r := rs[0]
		for _, ph := range []string{"before", "after", "idle"} {
			name := map[string]string{"before": "before", "after": "right after", "idle": fmt.Sprintf("after %v idle", s.Idle)}[ph]
			fmt.Printf("| %s | %s | %.1f | %.1f | %.1f |\n", row, name, r.stats[ph+"_go"]/(1<<20), r.stats[ph+"_c"]/(1<<20), r.stats[ph+"_rss"]/(1<<20))
		}
		l := fmt.Sprintf("%s: %d messages produced and delivered in %.1f s (%.0f msgs/s), of which it waited %.1f s for topics to exist; peak RSS %.0f MiB; client CPU %.2f µs/msg; "+
			"the harness spent %.1f s creating and priming topics and %.1f s deleting them, at most %.0f alive",
			row, r.count, r.d.Seconds(), float64(r.count)/r.d.Seconds(), time.Duration(r.stats["waited"]).Seconds(), r.rssMiB, r.cpuUs,
			time.Duration(r.stats["creating"]).Seconds(), time.Duration(r.stats["deleting"]).Seconds(), r.stats["maxalive"])
		if b, ok := r.stats["batches"]; ok {
			l += fmt.Sprintf("; %.0f engine calls, %.1f msgs/engine call", b, r.stats["meanbatch"])
		}
		lines = append(lines, l)
	}
	fmt.Println()
	for _, l := range lines {
		fmt.Printf("- %s\n", l)
	}
	fmt.Println()
}
