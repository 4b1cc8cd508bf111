package aioproducertest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// Cluster is librdkafka's in-process mock Kafka cluster (confluent-kafka-go's kafka.MockCluster), for
// integration tests: a real *aioproducer.Producer talks to it over TCP through librdkafka, as it would
// to brokers. Its broker ids are 1 to the number of brokers.
//
// Limits of the mock cluster, which no option lifts:
//   - no producer fencing: a second transactional producer with the same transactional.id does not
//     fence the first;
//   - messages of an aborted transaction are visible to read_committed consumers;
//   - the LogAppendTime it reports for every produce is a fixed 1234 ms (topics behave as
//     CreateTime otherwise);
//   - creating it makes librdkafka print a CONFWARN notice ("No `bootstrap.servers` configured") on
//     stderr, from the mock's own internal client: expected and harmless.
type Cluster struct {
	mc        *kafka.MockCluster
	closeOnce sync.Once
}

// ClusterOption configures a Cluster.
type ClusterOption func(*clusterConfig)

type clusterConfig struct {
	brokers int
	topics  []topicSpec
}

type topicSpec struct {
	name       string
	partitions int
}

// Brokers sets the number of brokers; default 1.
func Brokers(n int) ClusterOption { return func(c *clusterConfig) { c.brokers = n } }

// WithTopic creates topic with partitions partitions when the cluster starts. Topics the cluster does
// not have are created on first use, with the mock cluster's default partitions.
func WithTopic(name string, partitions int) ClusterOption {
	return func(c *clusterConfig) { c.topics = append(c.topics, topicSpec{name, partitions}) }
}

// NewCluster starts a Cluster, closed at the end of the test (t.Cleanup). A failure to start fails
// the test.
func NewCluster(t testing.TB, opts ...ClusterOption) *Cluster {
	t.Helper()
	c, err := StartCluster(opts...)
	if err != nil {
		t.Fatalf("aioproducertest: NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartCluster is NewCluster without a test (for an example's main): the caller closes it.
func StartCluster(opts ...ClusterOption) (*Cluster, error) {
	cfg := clusterConfig{brokers: 1}
	for _, o := range opts {
		o(&cfg)
	}
	mc, err := kafka.NewMockCluster(cfg.brokers)
	if err != nil {
		return nil, fmt.Errorf("aioproducertest: mock cluster: %w", err)
	}
	c := &Cluster{mc: mc}
	for _, tp := range cfg.topics {
		if err := c.CreateTopic(tp.name, tp.partitions); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close stops the cluster. It is idempotent. Close the producers first: a producer whose cluster is
// gone waits for its messages until they time out.
func (c *Cluster) Close() { c.closeOnce.Do(c.mc.Close) }

// Bootstrap returns the cluster's bootstrap.servers.
func (c *Cluster) Bootstrap() string { return c.mc.BootstrapServers() }

// Config returns a librdkafka configuration for a producer or consumer of the cluster: its
// bootstrap.servers, plus extra's settings (the caller owns the map).
func (c *Cluster) Config(extra ...kafka.ConfigMap) kafka.ConfigMap {
	cm := kafka.ConfigMap{"bootstrap.servers": c.Bootstrap()}
	for _, e := range extra {
		for k, v := range e {
			cm[k] = v
		}
	}
	return cm
}

// MockCluster returns the underlying kafka.MockCluster.
func (c *Cluster) MockCluster() *kafka.MockCluster { return c.mc }

// CreateTopic creates topic with partitions partitions, replicated once.
func (c *Cluster) CreateTopic(topic string, partitions int) error {
	if err := c.mc.CreateTopic(topic, partitions, 1); err != nil {
		return fmt.Errorf("aioproducertest: create topic %q: %w", topic, err)
	}
	return nil
}

// SetBrokerDown makes broker id (1 to the number of brokers) refuse connections and close those it
// has, until SetBrokerUp.
func (c *Cluster) SetBrokerDown(id int) error { return c.mc.SetBrokerDown(id) }

// SetBrokerUp brings broker id back.
func (c *Cluster) SetBrokerUp(id int) error { return c.mc.SetBrokerUp(id) }

// SetRoundTripDelay delays every response of broker id by d (0: none).
func (c *Cluster) SetRoundTripDelay(id int, d time.Duration) error {
	return c.mc.SetRoundtripDuration(id, d)
}

// ReadTopic reads every record of topic back, as the package's ReadTopic does.
func (c *Cluster) ReadTopic(ctx context.Context, topic string) ([]Record, error) {
	return ReadTopic(ctx, c.Config(), topic)
}

// WaitRecords waits until topic holds at least n records and returns them all, as the package's
// WaitRecords does.
func (c *Cluster) WaitRecords(ctx context.Context, topic string, n int) ([]Record, error) {
	return WaitRecords(ctx, c.Config(), topic, n)
}

// Records returns the n records of topic, sorted by partition and offset, waiting up to 30 s for them.
// It fails the test if they do not come, or if there are more.
func (c *Cluster) Records(t testing.TB, topic string, n int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := c.WaitRecords(ctx, topic, n)
	if err != nil {
		t.Fatalf("aioproducertest: %v", err)
	}
	if len(recs) != n {
		t.Fatalf("aioproducertest: %d records in %s, want %d", len(recs), topic, n)
	}
	return recs
}

// NewProducer returns a Producer for the cluster, with extra librdkafka settings and opts, closed at
// the end of the test. Its log lines at Warn and above go to the test's log (t.Log) unless opts set a
// logger. A configuration error fails the test.
func (c *Cluster) NewProducer(t testing.TB, extra kafka.ConfigMap, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	p, err := aioproducer.New(c.Config(extra), append([]aioproducer.Option{aioproducer.WithLogger(TestLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("aioproducertest: NewProducer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// TestLogger returns a logger that writes lines at Warn and above to t.Log: they show for a failing
// test, or with go test -v. Use it only for what stops logging before the test ends (a producer
// closed at cleanup).
func TestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
