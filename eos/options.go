package eos

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// Defaults of the options.
const (
	DefaultMaxBatch = 500                    // input messages per transaction
	DefaultMaxWait  = 100 * time.Millisecond // from a batch's first message to its transaction
)

// Option configures a Session. Options cannot fail; New validates them all at once.
type Option func(*config)

type config struct {
	maxBatch     int
	maxWait      time.Duration
	producerOpts []aioproducer.Option
	log          *slog.Logger
}

// WithBatch bounds each transaction's input: at most maxMessages messages, and no more than maxWait
// from the batch's first message to its transaction (default DefaultMaxBatch, DefaultMaxWait). A
// batch is never empty: while no input comes, the session polls and commits nothing. maxWait should
// stay well below the consumer's max.poll.interval.ms, which also bounds the transform and the
// commit: librdkafka serves the group's rebalances only while the session polls.
func WithBatch(maxMessages int, maxWait time.Duration) Option {
	return func(c *config) { c.maxBatch, c.maxWait = maxMessages, maxWait }
}

// WithProducerOptions passes opts to aioproducer.New for the session's transactional producer.
func WithProducerOptions(opts ...aioproducer.Option) Option {
	return func(c *config) { c.producerOpts = append(c.producerOpts, opts...) }
}

// WithLogger sets where the session logs its aborts, rewinds, retries and rebalances, and its
// consumer's librdkafka log lines (default slog.Default()). It is not passed to the producer: use
// WithProducerOptions(aioproducer.WithLogger(l)) for that.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// consumerConfig returns a copy of cm with the settings exactly-once needs, or an error naming a
// setting of cm that contradicts them.
func consumerConfig(cm kafka.ConfigMap) (kafka.ConfigMap, error) {
	out := kafka.ConfigMap{}
	for k, v := range cm {
		out[k] = v
	}
	if g, ok := out["group.id"]; !ok || fmt.Sprint(g) == "" {
		return nil, errors.New("aioproducer/eos: the consumer configuration has no group.id")
	}
	if _, ok := out["go.logs.channel.enable"]; ok {
		return nil, errors.New("aioproducer/eos: the consumer configuration sets go.logs.channel.enable: the session forwards the consumer's log lines to its logger (WithLogger)")
	}
	out["go.logs.channel.enable"] = true
	for key, want := range map[string]string{"isolation.level": "read_committed", "enable.auto.commit": "false"} {
		if v, ok := out[key]; ok && fmt.Sprint(v) != want {
			return nil, fmt.Errorf("aioproducer/eos: the consumer configuration sets %s=%v: exactly-once needs %s (the session sets it)", key, v, want)
		}
		out[key] = want
	}
	return out, nil
}

func (c *config) validate(producer kafka.ConfigMap, topics []string, fn Transform) error {
	switch {
	case c.maxBatch < 1:
		return fmt.Errorf("aioproducer/eos: WithBatch: maxMessages %d: at least 1", c.maxBatch)
	case c.maxWait <= 0:
		return fmt.Errorf("aioproducer/eos: WithBatch: maxWait %v: more than 0", c.maxWait)
	case len(topics) == 0:
		return errors.New("aioproducer/eos: no input topics")
	case fn == nil:
		return errors.New("aioproducer/eos: no transform")
	}
	if id, ok := producer["transactional.id"]; !ok || fmt.Sprint(id) == "" {
		return errors.New("aioproducer/eos: the producer configuration has no transactional.id")
	}
	return nil
}
