package main

// The stuck cell (-scale stuck): a broker that stops answering, on a real 3-broker cluster. Its target:
// with 3 brokers and one SIGSTOPped for 30 s under unkeyed load, delivery to the other brokers'
// partitions goes on at no less than half the rate it had before the pause.
//
// The cell brings up its own cluster (scripts/kafka.sh up3, in its own state dir: -stuck-state-dir) and
// always takes it down again, also on SIGINT or SIGTERM; the one broker of the other cells takes no
// part. For each client in turn, on a fresh topic (-stuck-partitions 12, replication 3,
// min.insync.replicas 2), a child process produces unkeyed messages at a fixed offered rate
// (-stuck-rate) with acks=all and idempotence, and records every Produce call and every delivery
// (stuck_child.go). -stuck-steady after the load starts, the harness reads the partition leaders from
// the metadata, SIGSTOPs a broker that is not the active KRaft controller (`kafka.sh pause N`), resumes
// it -stuck-pause later (`kafka.sh resume N`), lets the load run -stuck-after more and stops the child,
// which flushes and closes. The rates come from the child's records, against the times of the pause
// and the resume as the harness took them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scAioFunc is aio's row in the stuck cell: aioproducer.New with no option, ProduceFunc.
const scAioFunc = "aio defaults ProduceFunc"

var stuckRows = []string{scRaw, scAioFunc, scFranz}

// stuckNodes is the cluster's size: the nodes are 1..3, each a combined broker and controller.
const stuckNodes = 3

// stuckConfig is the stuck cell's part of the scale flags.
type stuckConfig struct {
	kafkaSh  string // scripts/kafka.sh
	stateDir string // the cluster's state dir
	rate     int    // offered messages a second
	parts    int    // partitions of each client's topic
	node     int    // the node to pause; 0: the lowest that is not the active controller
	steady   time.Duration
	pause    time.Duration
	after    time.Duration
}

// stuckRun is one client's run.
type stuckRun struct {
	row, topic string
	node       int32   // the paused node
	controller int32   // the active controller right before the pause; -1 if unknown
	leaders    []int32 // partition → leader right before the pause
	// Unix nanoseconds: the offered load starts, the pause (kafka.sh pause returned), the resume, and
	// STOP written.
	t0, paused, resumed, stopped int64
	calls                        []stuckCall
	deliveries                   []stuckDelivery
	flushed                      time.Duration // from STOP to the last delivery report
	refused                      int
	cpu                          time.Duration // the child's user+sys
	err                          error
}

// stuckResult is the cell's outcome.
type stuckResult struct {
	skipped   string
	bootstrap string
	session   time.Duration // broker.session.timeout.ms
	sessionBy string        // where session came from
	heartbeat string        // broker.heartbeat.interval.ms, as the broker reports it
	runs      []stuckRun
}

func (st stuckConfig) kafka(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{st.kafkaSh}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_STATE_DIR="+st.stateDir, "KAFKA_AUTO_CREATE_TOPICS=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kafka.sh %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out.String()), err
}

// defaultKafkaSh is scripts/kafka.sh: AIOBENCH_KAFKA_SH (bench-kafka.sh sets it), or next to bench/.
func defaultKafkaSh() string {
	if s := os.Getenv("AIOBENCH_KAFKA_SH"); s != "" {
		return s
	}
	return filepath.Join(sourceDir(), "..", "scripts", "kafka.sh")
}

// defaultStuckStateDir is AIOBENCH_STUCK_STATE_DIR (bench-kafka.sh sets it), or .cache/kafka/run-stuck.
func defaultStuckStateDir() string {
	if s := os.Getenv("AIOBENCH_STUCK_STATE_DIR"); s != "" {
		return s
	}
	d, _ := filepath.Abs(filepath.Join(sourceDir(), "..", ".cache", "kafka", "run-stuck"))
	return d
}

func runStuck(sc scaleConfig, rows []string) *stuckResult {
	st := sc.stuck
	res := &stuckResult{}
	self, err := os.Executable()
	if err != nil {
		res.skipped = err.Error()
		return res
	}
	// The cluster goes down when the cell ends, and on SIGINT or SIGTERM meanwhile (bench-kafka.sh's
	// trap takes this state dir down too).
	var downOnce sync.Once
	down := func() {
		downOnce.Do(func() {
			fmt.Fprintln(os.Stderr, "scale stuck: taking the 3-node cluster down")
			if _, err := st.kafka("down"); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		})
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			down()
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-quit:
		}
	}()
	defer func() {
		signal.Stop(sigc)
		close(quit)
		down()
	}()
	fmt.Fprintf(os.Stderr, "scale stuck: starting 3 nodes (%s up3, state in %s)\n", st.kafkaSh, st.stateDir)
	boot, err := st.kafka("up3")
	if err != nil {
		res.skipped = "the 3-node cluster did not start: " + err.Error()
		return res
	}
	res.bootstrap = boot
	adm, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": boot})
	if err != nil {
		res.skipped = err.Error()
		return res
	}
	defer adm.Close()
	res.session, res.sessionBy = 9*time.Second, "Kafka's default; the broker did not say"
	if v, err := brokerConfig(adm, "broker.session.timeout.ms"); err == nil {
		if ms, err := strconv.Atoi(v); err == nil {
			res.session, res.sessionBy = time.Duration(ms)*time.Millisecond, "as the brokers report it"
		}
	}
	res.heartbeat, _ = brokerConfig(adm, "broker.heartbeat.interval.ms")
	tmp, err := os.MkdirTemp("", "aiobench-stuck")
	if err != nil {
		res.skipped = err.Error()
		return res
	}
	defer os.RemoveAll(tmp)
	runID := time.Now().Unix() % 100000
	for i, row := range rows {
		r := runStuckClient(self, boot, adm, st, sc.size, row, fmt.Sprintf("bench-stuck%d-%d", runID, i), filepath.Join(tmp, fmt.Sprintf("log-%d", i)))
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "scale stuck %s: %v\n", row, r.err)
		} else {
			w := stuckWindows(r, res.session)
			fmt.Fprintf(os.Stderr, "scale stuck %-26s node %d paused; other brokers' partitions: before %.0f/s, pause %.0f/s, fence→resume %.0f/s (×%s); longest Produce in the pause %v  load %s\n",
				row, r.node, w[0].other, w[1].other, w[2].other, ratio(w[2].other, w[0].other), r.longestCall().d.Round(time.Millisecond), loadavg())
		}
		res.runs = append(res.runs, r)
	}
	return res
}

// runStuckClient runs one client on a fresh topic through the pause.
func runStuckClient(self, boot string, adm *kafka.AdminClient, st stuckConfig, size int, row, prefix, out string) (r stuckRun) {
	r.row, r.controller = row, -1
	spec := scaleSpec{Kind: "stuck", Prefix: prefix, Topics: 1, Size: size, Rate: st.rate, Out: out, For: st.steady + st.pause + st.after}
	r.topic = spec.topicName(0)
	if err := createStuckTopic(adm, r.topic, st.parts); err != nil {
		r.err = fmt.Errorf("create topic: %v", err)
		return r
	}
	defer deleteTopic(adm, r.topic)
	js, err := json.Marshal(spec)
	if err != nil {
		r.err = err
		return r
	}
	ch, err := startLive(self, "-child", row, "-broker", boot, "-scale-spec", string(js))
	if err != nil {
		r.err = err
		return r
	}
	defer func() { _ = ch.wait(time.Minute) }() // the child stops at EOF on its stdin too
	// READY comes once the client delivered its first message.
	deadline := time.Now().Add(2 * time.Minute)
	var rest []string
	for r.t0 == 0 {
		lines, eof := ch.take(time.Until(deadline))
		for _, l := range lines {
			if _, err := fmt.Sscanf(l, "READY %d", &r.t0); err != nil {
				rest = append(rest, l)
			}
		}
		switch {
		case r.t0 != 0:
		case eof:
			r.err = fmt.Errorf("the child ended before READY: %v", ch.wait(time.Minute))
			return r
		case time.Now().After(deadline):
			r.err = fmt.Errorf("no READY from the child within 2 minutes: %s", lastLines(ch.errb.String(), 5))
			return r
		}
	}
	time.Sleep(time.Until(time.Unix(0, r.t0).Add(st.steady)))

	// The node to pause: not the active controller (pausing it would add a controller election).
	ctrl, err := activeController(boot)
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale stuck %s: which node is the active controller: %v\n", row, err)
	} else {
		r.controller = ctrl
	}
	r.node = int32(st.node)
	if r.node <= 0 {
		for n := int32(1); n <= stuckNodes; n++ {
			if n != r.controller {
				r.node = n
				break
			}
		}
	}
	if r.leaders, err = partitionLeaders(adm, r.topic, st.parts); err != nil {
		r.err = fmt.Errorf("leaders before the pause: %v", err)
		return r
	}
	if _, err := st.kafka("pause", strconv.Itoa(int(r.node))); err != nil {
		r.err = err
		return r
	}
	r.paused = time.Now().UnixNano()
	time.Sleep(st.pause)
	_, err = st.kafka("resume", strconv.Itoa(int(r.node)))
	r.resumed = time.Now().UnixNano()
	if err != nil {
		r.err = err
		return r
	}
	time.Sleep(st.after)
	_ = ch.send("STOP")
	r.stopped = time.Now().UnixNano()
	if err := ch.wait(15 * time.Minute); err != nil {
		r.err = err
		return r
	}
	r.cpu = ch.cpu()
	for {
		lines, eof := ch.take(time.Second)
		rest = append(rest, lines...)
		if eof {
			break
		}
	}
	var res result
	for _, l := range rest {
		scanResult(&res, l)
	}
	r.flushed, r.refused = res.d, int(res.stats["refused"])
	if r.calls, r.deliveries, err = readStuckLog(out); err != nil {
		r.err = fmt.Errorf("the child's log: %v", err)
	}
	return r
}

// createStuckTopic creates topic with parts partitions, replication 3 and min.insync.replicas 2 once the
// cluster has its 3 brokers again (a resumed broker comes back fenced for a moment), and waits until
// every partition has a leader and all 3 replicas in sync.
func createStuckTopic(adm *kafka.AdminClient, topic string, parts int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := kafka.TopicSpecification{Topic: topic, NumPartitions: parts, ReplicationFactor: stuckNodes,
		Config: map[string]string{"min.insync.replicas": "2"}}
	for {
		rs, err := adm.CreateTopics(ctx, []kafka.TopicSpecification{spec}, kafka.SetAdminOperationTimeout(time.Minute))
		if err == nil && len(rs) == 1 {
			err = rs[0].Error
			if rs[0].Error.Code() == kafka.ErrNoError {
				break
			}
		}
		// INVALID_REPLICATION_FACTOR while a broker is still fenced: try again.
		if ctx.Err() != nil {
			return fmt.Errorf("%v (%v)", err, ctx.Err())
		}
		time.Sleep(time.Second)
	}
	for {
		res, err := adm.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{topic}))
		if err == nil && len(res.TopicDescriptions) == 1 {
			d := res.TopicDescriptions[0]
			ok := d.Error.Code() == kafka.ErrNoError && len(d.Partitions) == parts
			for _, p := range d.Partitions {
				ok = ok && p.Leader != nil && len(p.Isr) == stuckNodes
			}
			if ok {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("topic %s: not every partition has a leader and %d replicas in sync: %v", topic, stuckNodes, ctx.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// partitionLeaders reads each partition's leader from the metadata.
func partitionLeaders(adm *kafka.AdminClient, topic string, parts int) ([]int32, error) {
	md, err := adm.GetMetadata(&topic, false, 5000)
	if err != nil {
		return nil, err
	}
	t, ok := md.Topics[topic]
	if !ok || len(t.Partitions) != parts {
		return nil, fmt.Errorf("topic %s: no metadata for its %d partitions", topic, parts)
	}
	leaders := make([]int32, parts)
	for _, p := range t.Partitions {
		if p.ID < 0 || int(p.ID) >= parts {
			return nil, fmt.Errorf("topic %s: partition %d", topic, p.ID)
		}
		leaders[p.ID] = p.Leader
	}
	return leaders, nil
}

// activeController asks the cluster which node leads the metadata quorum (DescribeQuorum on
// __cluster_metadata; a broker forwards it to the controller). In KRaft, the controller id of a
// Metadata answer is a random broker, not the active controller.
func activeController(boot string) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(boot, ",")...))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return -1, fmt.Errorf("DescribeQuorum: no partition in the answer")
	}
	p0 := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p0.ErrorCode); err != nil {
		return -1, err
	}
	return p0.LeaderID, nil
}

// brokerConfig is a setting of broker 1 as it reports it (DescribeConfigs).
func brokerConfig(adm *kafka.AdminClient, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := adm.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceBroker, Name: "1"}})
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if e, ok := r.Config[name]; ok && e.Value != "" {
			return e.Value, nil
		}
	}
	return "", fmt.Errorf("broker 1 does not report %s", name)
}

// ---- the figures ----

// stuckWindow is one stretch of a run and its rates, in messages a second.
type stuckWindow struct {
	name     string
	from, to int64   // Unix ns
	accepted float64 // Produce calls that returned (the message accepted) in the window
	other    float64 // deliveries to the partitions the paused node did not lead before the pause
	all      float64 // deliveries to any partition
	failed   int     // failed deliveries reported in the window
}

// stuckWindows are, in order: the 10 s before the pause, the whole pause, from the fence to the resume
// (the fence: pause + broker.session.timeout.ms + 2 s, when the controller has fenced the paused
// broker and dropped it from every ISR), the last 10 s of the pause (the backlog of the first seconds
// after the fence is delivered by then), and the last 10 s of the run.
func stuckWindows(r stuckRun, session time.Duration) []stuckWindow {
	sec := int64(time.Second)
	fence := min(r.paused+int64(session)+2*sec, r.resumed)
	ws := []stuckWindow{
		{name: "before the pause (last 10 s)", from: r.paused - 10*sec, to: r.paused},
		{name: "the whole pause", from: r.paused, to: r.resumed},
		{name: "fence → resume", from: fence, to: r.resumed},
		{name: "the last 10 s of the pause", from: max(r.paused, r.resumed-10*sec), to: r.resumed},
		{name: "after the resume (last 10 s)", from: max(r.resumed, r.stopped-10*sec), to: r.stopped},
	}
	other := r.otherPartitions()
	for i := range ws {
		w := &ws[i]
		d := float64(w.to-w.from) / 1e9
		if d <= 0 {
			continue
		}
		var acc, oth, all int
		for _, c := range r.calls {
			if c.End >= w.from && c.End < w.to {
				acc++
			}
		}
		for _, dl := range r.deliveries {
			if dl.T < w.from || dl.T >= w.to {
				continue
			}
			if dl.Failed != 0 {
				w.failed++
				continue
			}
			all++
			if dl.Partition >= 0 && int(dl.Partition) < len(other) && other[dl.Partition] {
				oth++
			}
		}
		w.accepted, w.other, w.all = float64(acc)/d, float64(oth)/d, float64(all)/d
	}
	return ws
}

// otherPartitions says, by partition, whether another node than the paused one led it before the pause.
func (r stuckRun) otherPartitions() []bool {
	o := make([]bool, len(r.leaders))
	for p, l := range r.leaders {
		o[p] = l != r.node
	}
	return o
}

// gaps are the stretches of the pause of at least 1 s without a delivery to the other brokers'
// partitions, as offsets from the pause.
func (r stuckRun) gaps() [][2]time.Duration {
	other := r.otherPartitions()
	ts := []int64{r.paused}
	for _, d := range r.deliveries {
		if d.Failed == 0 && d.T > r.paused && d.T < r.resumed && d.Partition >= 0 && int(d.Partition) < len(other) && other[d.Partition] {
			ts = append(ts, d.T)
		}
	}
	ts = append(ts, r.resumed)
	slices.Sort(ts)
	var out [][2]time.Duration
	for i := 1; i < len(ts); i++ {
		if ts[i]-ts[i-1] >= int64(time.Second) {
			out = append(out, [2]time.Duration{time.Duration(ts[i-1] - r.paused), time.Duration(ts[i] - r.paused)})
		}
	}
	return out
}

// longestCall is the longest Produce call that was under way at some time during the pause, and when
// it began, from the pause.
type longCall struct{ d, at time.Duration }

func (r stuckRun) longestCall() longCall {
	var l longCall
	for _, c := range r.calls {
		if c.End > r.paused && c.Start < r.resumed && time.Duration(c.End-c.Start) > l.d {
			l = longCall{d: time.Duration(c.End - c.Start), at: time.Duration(c.Start - r.paused)}
		}
	}
	return l
}

func (r stuckRun) delivered() (ok, failed int) {
	for _, d := range r.deliveries {
		if d.Failed != 0 {
			failed++
		} else {
			ok++
		}
	}
	return ok, failed
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func printStuck(sc scaleConfig, res *stuckResult) {
	st := sc.stuck
	fmt.Printf("### real Kafka, SCALE stuck: 3 brokers, one SIGSTOPped %v, unkeyed %d B at %d msgs/s offered\n\n", st.pause, sc.size, st.rate)
	fmt.Printf("Command: `%s`\n\n", benchCommand())
	if res.skipped != "" {
		fmt.Printf("Skipped: %s\n\n", res.skipped)
		return
	}
	hb := res.heartbeat
	if hb == "" {
		hb = "unknown"
	}
	fmt.Printf("Target: delivery to the other brokers' partitions goes on at ≥ 0.5× the rate it had before the pause. "+
		"Cluster: Apache Kafka 4.4.0, 3 KRaft nodes on 127.0.0.1 (each a broker and a controller; `scripts/kafka.sh up3`, %s), "+
		"broker.session.timeout.ms %d (%s), broker.heartbeat.interval.ms %s. "+
		"Each client on a fresh topic of %d partitions, replication 3, min.insync.replicas 2, one client after the other, each in a child process of its own; "+
		"acks=all, idempotence on, linger.ms 5, no compression, %d B values, no key. "+
		"The child offers message i at t0 + i/%d (every millisecond it produces what has fallen due, so a Produce that blocks is followed by a burst: an open loop) "+
		"and records every Produce call and every delivery report (time, partition, outcome). "+
		"%v after t0 the harness reads the partition leaders from the metadata, SIGSTOPs a node that is not the active KRaft controller (DescribeQuorum) with `kafka.sh pause N`, "+
		"resumes it %v later (`kafka.sh resume N`), lets the load run %v more, then the child flushes and closes. "+
		"\"Other brokers' partitions\": those the paused node did not lead right before the pause. "+
		"The fence: pause + broker.session.timeout.ms + 2 s, by when the controller has fenced the paused broker and dropped it from every ISR; "+
		"until then no partition can take an acks=all write (all 3 replicas are in every ISR), whatever the client. "+
		"Accepted: Produce calls that returned with the message taken, a second (raw: ErrQueueFull retried every 100 µs until taken; franz-go's Produce blocks at 10,000 buffered records). "+
		"aio: `aioproducer.New` with no option, ProduceFunc with one callback for all messages.\n\n",
		res.bootstrap, res.session.Milliseconds(), res.sessionBy, hb, st.parts, sc.size, st.rate, st.steady, st.pause, st.after)
	fmt.Println("| client | window | s | accepted msgs/s | delivered msgs/s, other brokers' partitions | × before | delivered msgs/s, all partitions | failed |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	var notes []string
	for _, r := range res.runs {
		if r.err != nil {
			notes = append(notes, fmt.Sprintf("%s: failed: %v", r.row, r.err))
			continue
		}
		ws := stuckWindows(r, res.session)
		for i, w := range ws {
			x := "-"
			if i > 0 {
				x = ratio(w.other, ws[0].other)
			}
			fmt.Printf("| %s | %s | %.1f | %.0f | %.0f | %s | %.0f | %d |\n", r.row, w.name, float64(w.to-w.from)/1e9, w.accepted, w.other, x, w.all, w.failed)
		}
	}
	fmt.Println()
	fmt.Println("| client | paused node | its partitions | no delivery to the other brokers' partitions (≥ 1 s) | fence → resume × before | ≥ 0.5? | longest Produce in the pause | failed | produced | delivered | flush after stop | client CPU |")
	fmt.Println("| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range res.runs {
		if r.err != nil {
			continue
		}
		ws := stuckWindows(r, res.session)
		var mine []string
		for p, l := range r.leaders {
			if l == r.node {
				mine = append(mine, strconv.Itoa(p))
			}
		}
		ctrl := fmt.Sprintf("controller: node %d", r.controller)
		if r.controller < 0 {
			ctrl = "controller unknown"
		}
		var gaps []string
		for _, g := range r.gaps() {
			gaps = append(gaps, fmt.Sprintf("+%.1f → +%.1f s", g[0].Seconds(), g[1].Seconds()))
		}
		if len(gaps) == 0 {
			gaps = append(gaps, "none")
		}
		x := ws[2].other / max(ws[0].other, 1e-9)
		meets := "no"
		if x >= 0.5 {
			meets = "yes"
		}
		lc := r.longestCall()
		ok, failed := r.delivered()
		fmt.Printf("| %s | %d (%s) | %s | %s | %.2f | %s | %v (from +%s) | %d | %d | %d | %s | %s |\n",
			r.row, r.node, ctrl, strings.Join(mine, ","), strings.Join(gaps, ", "), x, meets, lc.d.Round(time.Millisecond), secs(lc.at),
			failed+r.refused, len(r.calls), ok, secs(r.flushed), secs(r.cpu))
	}
	fmt.Println()
	notes = append(notes, "Offsets (+) are from the pause. Failed: failed deliveries plus refused Produce calls. "+
		"Flush after stop: from STOP to the last delivery report. Client CPU: user+sys of the child over its life (wait4).")
	for _, n := range notes {
		fmt.Printf("- %s\n", n)
	}
	fmt.Println()
}

// benchCommand is the command that reproduces this run: AIOBENCH_COMMAND (bench-kafka.sh sets it), or
// bench's own command line.
func benchCommand() string {
	if c := os.Getenv("AIOBENCH_COMMAND"); c != "" {
		return c
	}
	return "bench " + strings.Join(os.Args[1:], " ")
}
