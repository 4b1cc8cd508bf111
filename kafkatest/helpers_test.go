//go:build kafka

package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// Environment set by scripts/test-kafka.sh.
const (
	envBootstrap      = "KAFKA_BOOTSTRAP"
	envCluster3       = "KAFKA_CLUSTER3_BOOTSTRAP"
	envCluster3State  = "KAFKA_CLUSTER3_STATE_DIR"
	envScript         = "KAFKA_SCRIPT"
	howToRun          = "run `make test-kafka` (scripts/test-kafka.sh), which starts the brokers and sets it"
	adminTimeout      = 30 * time.Second
	topicReadyTimeout = 60 * time.Second
)

// singleBroker returns the single broker's bootstrap address, or skips the test.
func singleBroker(t *testing.T) string {
	t.Helper()
	bs := os.Getenv(envBootstrap)
	if bs == "" {
		t.Skipf("%s is not set: %s", envBootstrap, howToRun)
	}
	return bs
}

// cluster is the 3-node cluster of scripts/kafka.sh up3.
type cluster struct {
	bootstrap string
	script    string
	stateDir  string
}

// cluster3 returns the 3-node cluster, or skips the test.
func cluster3(t *testing.T) cluster {
	t.Helper()
	c := cluster{os.Getenv(envCluster3), os.Getenv(envScript), os.Getenv(envCluster3State)}
	switch {
	case c.bootstrap == "":
		t.Skipf("%s is not set: %s", envCluster3, howToRun)
	case c.script == "" || c.stateDir == "":
		t.Skipf("%s and %s must be set with %s to kill and restart brokers: %s", envScript, envCluster3State, envCluster3, howToRun)
	}
	return c
}

// run runs scripts/kafka.sh on the cluster's state dir and returns its stdout.
func (c cluster) run(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script, args...)
	cmd.Env = append(os.Environ(), "KAFKA_STATE_DIR="+c.stateDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("kafka.sh %s: %s", strings.Join(args, " "), s)
	}
	if err != nil {
		return string(out), fmt.Errorf("kafka.sh %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

var topicSeq atomic.Int64

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName returns a topic name unique to this test and run.
func topicName(t *testing.T, suffix string) string {
	base := nonTopicChars.ReplaceAllString(t.Name(), "_")
	if len(base) > 120 {
		base = base[:120]
	}
	return fmt.Sprintf("kt.%s.%s.%d.%d", base, suffix, time.Now().UnixNano(), topicSeq.Add(1))
}

// newAdmin returns an AdminClient closed at cleanup. It never asks the broker to create a topic.
func newAdmin(t *testing.T, bootstrap string) *kafka.AdminClient {
	t.Helper()
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers":        bootstrap,
		"allow.auto.create.topics": false,
	})
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a
}

// createTopic creates a topic and waits until every partition has a leader and a full ISR.
func createTopic(t *testing.T, bootstrap, name string, partitions, replicas int, config map[string]string) {
	t.Helper()
	createTopics(t, bootstrap, []string{name}, partitions, replicas, config)
}

// createTopics creates the topics in one request, each with the same partitions, replicas and config,
// and waits until every partition of each has a leader and a full ISR (topicReadyTimeout).
func createTopics(t *testing.T, bootstrap string, names []string, partitions, replicas int, config map[string]string) {
	t.Helper()
	a := newAdmin(t, bootstrap)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	specs := make([]kafka.TopicSpecification, len(names))
	for i, name := range names {
		specs[i] = kafka.TopicSpecification{Topic: name, NumPartitions: partitions, ReplicationFactor: replicas, Config: config}
	}
	res, err := a.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(adminTimeout))
	require.NoError(t, err, "create topics %s", topicList(names))
	for _, r := range res {
		require.Equal(t, kafka.ErrNoError, r.Error.Code(), "create topic %s: %v", r.Topic, r.Error)
	}
	waitPartitions(t, a, names, partitions, topicReadyTimeout, "led with a full ISR", fullISR(replicas))
}

// deleteTopics deletes the topics in one request, reporting a failure as a test error. Brokers
// remove the logs of a deleted topic a minute later (log.segment.delete.delay.ms).
func deleteTopics(t *testing.T, bootstrap string, names []string) {
	t.Helper()
	a := newAdmin(t, bootstrap)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := a.DeleteTopics(ctx, names, kafka.SetAdminOperationTimeout(adminTimeout))
	if err != nil {
		t.Errorf("delete topics %s: %v", topicList(names), err)
		return
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Errorf("delete topic %s: %v", r.Topic, r.Error)
		}
	}
}

// fullISR is waitPartitions' test for a partition led by a broker with all replicas in sync.
func fullISR(replicas int) func(kafka.PartitionMetadata) bool {
	return func(p kafka.PartitionMetadata) bool { return p.Leader >= 0 && len(p.Isrs) >= replicas }
}

// waitPartitions waits until a broker's metadata shows every topic of names with all its partitions,
// each without error and passing ok, and returns that metadata. After timeout it fails the test,
// saying what it waited for (what) and the first partition that did not pass.
func waitPartitions(t *testing.T, a *kafka.AdminClient, names []string, partitions int, timeout time.Duration,
	what string, ok func(kafka.PartitionMetadata) bool) *kafka.Metadata {
	t.Helper()
	// One topic: ask for it alone. Several: one listing of all topics, not a request per topic.
	var one *string
	if len(names) == 1 {
		one = &names[0]
	}
	deadline := time.Now().Add(timeout)
	for {
		md, err := a.GetMetadata(one, one == nil, 5000)
		last := fmt.Sprint(err)
		if err == nil {
			if last = notAll(md, names, partitions, ok); last == "" {
				return md
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics %s: partitions not all %s after %v (last: %s)", topicList(names), what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notAll returns "" when md shows every topic of names with all its partitions, each without error
// and passing ok; else it describes the first that does not.
func notAll(md *kafka.Metadata, names []string, partitions int, ok func(kafka.PartitionMetadata) bool) string {
	for _, name := range names {
		tm, found := md.Topics[name]
		switch {
		case !found:
			return fmt.Sprintf("%s not in the metadata", name)
		case tm.Error.Code() != kafka.ErrNoError:
			return fmt.Sprintf("%s: %v", name, tm.Error)
		case len(tm.Partitions) != partitions:
			return fmt.Sprintf("%s has %d partitions", name, len(tm.Partitions))
		}
		for _, p := range tm.Partitions {
			if p.Error.Code() != kafka.ErrNoError || !ok(p) {
				return fmt.Sprintf("%s[%d]: leader %d, replicas %v, ISR %v, error %v", name, p.ID, p.Leader, p.Replicas, p.Isrs, p.Error)
			}
		}
	}
	return ""
}

// topicList names the topics for a message: the first, and how many more.
func topicList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return fmt.Sprintf("%s and %d more", names[0], len(names)-1)
}

// partitionLeader returns the broker id leading partition p of topic, once a broker's metadata shows
// one (topicReadyTimeout): in a cluster, each broker learns of a new topic at its own pace, so the
// broker this admin client asks may not know the topic createTopic saw ready.
func partitionLeader(t *testing.T, bootstrap, topic string, p int32) int32 {
	t.Helper()
	return waitLeader(t, bootstrap, topic, p, -1, topicReadyTimeout)
}

// waitLeader waits until the metadata shows partition p of topic led by a broker other than except
// (-1: any broker), and returns that broker's id.
func waitLeader(t *testing.T, bootstrap, topic string, p, except int32, timeout time.Duration) int32 {
	t.Helper()
	a := newAdmin(t, bootstrap)
	deadline := time.Now().Add(timeout)
	for {
		md, err := a.GetMetadata(&topic, false, 5000)
		last := fmt.Sprint(err)
		if err == nil {
			last = fmt.Sprintf("partition %d not in the metadata", p)
			for _, pm := range md.Topics[topic].Partitions {
				if pm.ID != p {
					continue
				}
				if pm.Leader >= 0 && pm.Leader != except {
					return pm.Leader
				}
				last = fmt.Sprintf("led by %d", pm.Leader)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: no leader of partition %d other than %d after %v (last: %s)", topic, p, except, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topicExists looks the topic up in a full metadata listing (which never creates topics).
func topicExists(t *testing.T, bootstrap, topic string) bool {
	t.Helper()
	a := newAdmin(t, bootstrap)
	md, err := a.GetMetadata(nil, true, 10000)
	require.NoError(t, err)
	_, ok := md.Topics[topic]
	return ok
}

// logWriter sends the producer's warnings and errors to the test log, at most max lines.
type logWriter struct {
	t       *testing.T
	mu      sync.Mutex
	n, max  int
	dropped int
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n >= w.max {
		w.dropped++
		return len(p), nil
	}
	w.n++
	w.t.Log("producer log: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// errorLines is a slog handler that keeps the producer's ERROR lines and writes WARN and above to the
// test log (as newProducer's logger does), for a test that checks what an operator would be paged for.
type errorLines struct {
	mu   sync.Mutex
	errs []string
	w    *logWriter
}

// tee returns the handler, writing to t's log.
func (e *errorLines) tee(t *testing.T) slog.Handler {
	e.w = &logWriter{t: t, max: 40}
	return e
}

func (e *errorLines) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (e *errorLines) WithAttrs([]slog.Attr) slog.Handler           { return e }
func (e *errorLines) WithGroup(string) slog.Handler                { return e }
func (e *errorLines) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	if r.Level >= slog.LevelError {
		e.mu.Lock()
		e.errs = append(e.errs, line)
		e.mu.Unlock()
	}
	_, err := e.w.Write([]byte(line))
	return err
}

func (e *errorLines) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.errs...)
}

// newProducer returns a producer (acks=all, idempotent, no topic auto-creation, plus extra) that logs
// warnings to the test log and is closed at cleanup.
func newProducer(t *testing.T, bootstrap string, extra kafka.ConfigMap, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	cm := kafka.ConfigMap{
		"bootstrap.servers":        bootstrap,
		"acks":                     "all",
		"enable.idempotence":       true,
		"allow.auto.create.topics": false,
	}
	for k, v := range extra {
		cm[k] = v
	}
	lw := &logWriter{t: t, max: 40}
	var out io.Writer = lw
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := aioproducer.New(cm, append([]aioproducer.Option{aioproducer.WithLogger(logger)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// Close returns the first call's result again: an error while this ctx is still live belongs
		// to a Close the test made (and checked) itself.
		if err := p.Close(ctx); err != nil && ctx.Err() != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
		lw.mu.Lock()
		if lw.dropped > 0 {
			t.Logf("producer log: %d more lines not shown", lw.dropped)
		}
		lw.mu.Unlock()
	})
	return p
}

// consumeAll reads every partition of topic from the beginning up to its high watermark as of the
// call, and returns the records sorted by partition and offset.
func consumeAll(t *testing.T, bootstrap, topic string, timeout time.Duration) []aioproducertest.Record {
	t.Helper()
	return consumeAllWith(t, kafka.ConfigMap{"bootstrap.servers": bootstrap}, topic, timeout)
}

// consumeAllWith is consumeAll with a consumer configured with cfg (bootstrap.servers, and security
// settings) as well.
func consumeAllWith(t *testing.T, cfg kafka.ConfigMap, topic string, timeout time.Duration) []aioproducertest.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs, err := aioproducertest.ReadTopic(ctx, cfg, topic)
	require.NoError(t, err)
	return recs
}

// capped reports at most max problems as test errors and counts the rest.
type capped struct {
	t     *testing.T
	max   int
	count int
}

func (c *capped) errorf(format string, args ...any) {
	c.t.Helper()
	c.count++
	if c.count <= c.max {
		c.t.Errorf(format, args...)
	}
}

func (c *capped) done(what string) {
	c.t.Helper()
	if c.count > c.max {
		c.t.Errorf("%s: %d problems in all, %d shown", what, c.count, c.max)
	}
}

// kafkaCode returns the code of the kafka.Error in err's chain, and whether there is one.
func kafkaCode(err error) (kafka.ErrorCode, bool) {
	var ke kafka.Error
	if err == nil || !errors.As(err, &ke) {
		return kafka.ErrNoError, false
	}
	return ke.Code(), true
}
