package main

// The churn cell's harness side: a window of topics alive on the broker. A broker keeps a file open
// per partition, and the 2-core VM's broker may keep 20,000 open (a hard limit), so the 20,000 topics
// of the churn cell cannot all exist at once. The client's workload stays the same (PerTopic messages
// to each of Topics topics in turn, then every delivery awaited), but the harness creates the topics
// ahead of it in -scale-chunk chunks, each chunk awaited until every partition has a leader and then
// primed with one message (so that its log exists before the client writes), keeping at most
// -churn-window topics alive, and deletes the topics behind the client once it reports them fully
// delivered (churnGate in scale_child.go). bench-kafka.sh sets file.delete.delay.ms to 1 s with -scale,
// so a deleted topic's files close soon after. Each client gets topics of its own: the same workload
// on fresh topics, as each first write to a partition costs the broker the same.

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// churnStall is how long the harness waits for a churn child to make progress before it kills it.
const churnStall = 10 * time.Minute

// primeChunk writes one message to each of names, with a producer of its own: a librdkafka producer
// that has known 20,000 topics spends most of a core in its main thread (rd_kafka_topic_find_fl, a
// linear search of its topics), beside the client being measured.
func primeChunk(bootstrap string, names []string, val []byte) error {
	kp, err := newPrimer(bootstrap)
	if err != nil {
		return err
	}
	defer kp.Close()
	return primeRound(kp, names, 1, 1, val)
}

// runChurnClient runs one churn client on topics prefix-0 .. prefix-(Topics-1).
func runChurnClient(self, bootstrap string, adm *kafka.AdminClient, sc scaleConfig, s scaleSpec, row string) (result, error) {
	s.Prefix = s.Prefix + "-" + map[string]string{scAio: "a", scRaw: "r"}[row]
	names := s.topicNames()
	window, chunk := max(1, sc.churnWindow), max(1, sc.chunk)
	val := payload(s.Size)
	created, deleted, delivered, maxAlive := 0, 0, 0, 0
	var creating, deleting time.Duration
	createNext := func() error {
		t0 := time.Now()
		hi := min(len(names), created+chunk)
		if err := createTopics(adm, names[created:hi], 1, chunk); err != nil {
			return err
		}
		if err := primeChunk(bootstrap, names[created:hi], val); err != nil {
			return fmt.Errorf("priming: %v", err)
		}
		created = hi
		maxAlive = max(maxAlive, created-deleted)
		creating += time.Since(t0)
		return nil
	}
	deleteUpTo := func(n int) {
		if n <= deleted {
			return
		}
		t0 := time.Now()
		deleteTopics(adm, names[deleted:n], chunk)
		deleted = n
		deleting += time.Since(t0)
	}
	defer func() { deleteUpTo(created) }()
	for created < min(len(names), window) {
		if err := createNext(); err != nil {
			return result{}, err
		}
	}
	fmt.Fprintf(os.Stderr, "scale churn %d %s: the first %d topics created and primed in %.1f s\n", s.Topics, row, created, creating.Seconds())
	js, err := json.Marshal(s)
	if err != nil {
		return result{}, err
	}
	ch, err := startLive(self, "-child", row, "-broker", bootstrap, "-scale-spec", string(js))
	if err != nil {
		return result{}, err
	}
	defer func() { _ = ch.wait(time.Minute) }()
	if err := ch.send("CREATED %d", created); err != nil {
		return result{}, err
	}
	var r result
	r.count = s.Count
	found := false
	lastProgress := time.Now()
	lastLog := time.Now()
	for {
		busy := created < len(names) && created-deleted < window
		wait := time.Second
		if busy {
			wait = 0
		}
		lines, eof := ch.take(wait)
		for _, l := range lines {
			var d int
			if _, err := fmt.Sscanf(l, "DELIVERED %d", &d); err == nil {
				delivered, lastProgress = d, time.Now()
				continue
			}
			found = scanResult(&r, l) || found
		}
		if eof {
			break
		}
		if delivered-deleted >= chunk || (delivered == len(names) && deleted < delivered) {
			deleteUpTo(delivered)
		}
		if created < len(names) && created-deleted < window {
			if err := createNext(); err != nil {
				return r, err
			}
			if err := ch.send("CREATED %d", created); err != nil {
				return r, err
			}
			lastProgress = time.Now()
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			fmt.Fprintf(os.Stderr, "scale churn %d %s: %d topics created, %d delivered, %d deleted  load %s\n", s.Topics, row, created, delivered, deleted, loadavg())
		}
		if time.Since(lastProgress) > churnStall+s.Idle {
			// The child's goroutines (SIGQUIT) into the log, then the end of it.
			_ = ch.cmd.Process.Signal(syscall.SIGQUIT)
			err := ch.wait(10 * time.Second)
			e := ch.errb.String()
			e = e[max(0, len(e)-256<<10):]
			fmt.Fprintf(os.Stderr, "scale churn %d %s: no progress for %v; the end of the child's stderr:\n%s\n", s.Topics, row, churnStall+s.Idle, e)
			return r, fmt.Errorf("no progress for %v (%d topics created, %d delivered): %v", churnStall+s.Idle, created, delivered, err)
		}
	}
	if err := ch.wait(time.Minute); err != nil {
		return r, err
	}
	if !found {
		return r, fmt.Errorf("no RESULT line: %s", lastLines(ch.errb.String(), 5))
	}
	if ps := ch.cmd.ProcessState; ps != nil {
		r.usage(ps, s.Count+1)
	}
	if hwm, ok := r.stats["hwm"]; ok {
		r.rssMiB = hwm / (1 << 20)
	}
	r.allocs /= float64(max(1, s.Count))
	r.stats["creating"] = float64(creating)
	r.stats["deleting"] = float64(deleting)
	r.stats["maxalive"] = float64(maxAlive)
	return r, nil
}
