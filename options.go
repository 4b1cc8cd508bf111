package aioproducer

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Defaults of the options.
const (
	DefaultBatchSize       = 1000
	DefaultBufferTimeout   = 5 * time.Millisecond
	DefaultMaxBufferedMsgs = 100_000
	DefaultMaxBufferedSize = 64 << 20
	maxWorkers             = 256
)

// DefaultWorkers is the number of executor workers when WithWorkers is not given: GOMAXPROCS, at most 4.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// Option configures a Producer. Options cannot fail; New validates them all at once.
type Option func(*config)

type config struct {
	batchSize     int
	bufferTimeout time.Duration
	workers       int
	maxMsgs       int
	maxBytes      int64
	logger        *slog.Logger
	engine        Engine
}

func defaultConfig() config {
	return config{
		batchSize:     DefaultBatchSize,
		bufferTimeout: DefaultBufferTimeout,
		workers:       DefaultWorkers(),
		maxMsgs:       DefaultMaxBufferedMsgs,
		maxBytes:      DefaultMaxBufferedSize,
		logger:        slog.Default(),
		engine:        defaultEngine,
	}
}

// WithBatchSize sets how many messages of one topic the producer collects into a messageBatch before it
// hands the batch to librdkafka at once. Default 1000; at least 1. This is the producer's own batching in
// front of librdkafka; librdkafka still builds its own per-partition request batches (batch.size,
// batch.num.messages, linger.ms).
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithBufferTimeout sets the longest time a message waits in the producer's buffer: a batch goes out
// when it is full or when its oldest message has waited d, whichever comes first. A batch whose worker is
// idle goes out at once, without waiting. Default 5ms; more than 0. librdkafka's linger.ms (default 5ms)
// comes on top of it.
func WithBufferTimeout(d time.Duration) Option { return func(c *config) { c.bufferTimeout = d } }

// WithWorkers sets the number of executor workers that hand batches to librdkafka. A topic always goes to
// the same worker, so order per key and partition holds with any number. Default DefaultWorkers(); 1 to 256.
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithMaxBuffered bounds the messages the producer holds, from Produce until their outcome is known
// (like the Java producer's buffer.memory, and counting messages inside librdkafka too): at most messages
// messages and bytes bytes of keys, values and headers. When it is full, Produce waits and TryProduce
// fails with ErrBufferFull. Defaults 100000 messages and 64 MiB; both at least 1. A message larger than
// bytes fails with ErrInvalidMessage. librdkafka's own queue (queue.buffering.max.messages, default
// 100000, and queue.buffering.max.kbytes) is a second bound: when it is full the producer waits for
// deliveries and tries again.
func WithMaxBuffered(messages int, bytes int64) Option {
	return func(c *config) { c.maxMsgs, c.maxBytes = messages, bytes }
}

// WithLogger sets the logger for the producer's own events and for librdkafka's log lines (syslog levels
// mapped to slog levels). Default slog.Default(). It must not be nil.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Engine selects how the producer talks to librdkafka (WithEngine).
type Engine int

const (
	// EngineKafkaProducer hands messages to confluent-kafka-go's kafka.Producer, one Produce call
	// per message, and reads its Events channel.
	EngineKafkaProducer Engine = iota + 1
	// EngineBatch uses the producer's own librdkafka handle (the librdkafka confluent-kafka-go
	// bundles): one cgo call enqueues a whole batch and one cgo call drains thousands of delivery
	// reports. Same guarantees as EngineKafkaProducer, fewer cgo crossings and allocations.
	EngineBatch
)

// DefaultEngine is the engine when WithEngine is not given.
const DefaultEngine = EngineKafkaProducer

// defaultEngine is DefaultEngine; the tests switch it to run the whole suite on either engine.
var defaultEngine = DefaultEngine

func (e Engine) String() string {
	switch e {
	case EngineKafkaProducer:
		return "kafka-producer"
	case EngineBatch:
		return "batch"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// ParseEngine returns the engine named s: "kafka" (or "kafka-producer", its String) for
// EngineKafkaProducer, "batch" for EngineBatch. It suits flags and environment variables.
func ParseEngine(s string) (Engine, error) {
	switch s {
	case "kafka", "kafka-producer":
		return EngineKafkaProducer, nil
	case "batch":
		return EngineBatch, nil
	}
	return 0, fmt.Errorf("aioproducer: unknown engine %q: want kafka or batch", s)
}

// WithEngine selects the engine that hands messages to librdkafka: EngineKafkaProducer (the default,
// DefaultEngine) or EngineBatch. The public API and every guarantee (order, exactly one outcome,
// backpressure, Close, fatal errors, headers, timestamps) are the same with both.
func WithEngine(e Engine) Option { return func(c *config) { c.engine = e } }

func (c *config) validate() error {
	switch {
	case c.batchSize < 1:
		return &ConfigError{Key: "WithBatchSize", Err: fmt.Errorf("batch size %d is less than 1", c.batchSize)}
	case c.bufferTimeout <= 0:
		return &ConfigError{Key: "WithBufferTimeout", Err: fmt.Errorf("buffer timeout %v is not positive", c.bufferTimeout)}
	case c.workers < 1 || c.workers > maxWorkers:
		return &ConfigError{Key: "WithWorkers", Err: fmt.Errorf("%d workers is not within 1 to %d", c.workers, maxWorkers)}
	case c.maxMsgs < 1:
		return &ConfigError{Key: "WithMaxBuffered", Err: fmt.Errorf("message limit %d is less than 1", c.maxMsgs)}
	case c.maxBytes < 1:
		return &ConfigError{Key: "WithMaxBuffered", Err: fmt.Errorf("byte limit %d is less than 1", c.maxBytes)}
	case c.logger == nil:
		return &ConfigError{Key: "WithLogger", Err: errors.New("nil logger")}
	case c.engine != EngineKafkaProducer && c.engine != EngineBatch:
		return &ConfigError{Key: "WithEngine", Err: fmt.Errorf("unknown engine %v", c.engine)}
	}
	return nil
}

// managedKeys are confluent-kafka-go settings the producer sets itself; a user value would break it.
var managedKeys = []string{
	"go.batch.producer", "go.delivery.reports", "go.delivery.report.fields", "go.events.channel.size",
	"go.produce.channel.size", "go.logs.channel.enable", "go.logs.channel", "delivery.report.only.error",
	"dr_cb", "dr_msg_cb",
}

// kafkaConfig checks the user's librdkafka configuration and returns the one the producer uses: a copy
// with safe defaults (acks=all and enable.idempotence=true unless the user chose otherwise) and the
// settings the producer manages. librdkafka checks the rest in New.
func kafkaConfig(user kafka.ConfigMap) (kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{}
	for k, v := range user {
		cm[k] = v
	}
	for _, k := range managedKeys {
		if _, ok := cm[k]; ok {
			return nil, &ConfigError{Key: k, Err: errors.New("set by aioproducer itself; remove it")}
		}
	}
	bs, _ := cm["bootstrap.servers"].(string)
	mbl, _ := cm["metadata.broker.list"].(string)
	if strings.TrimSpace(bs) == "" && strings.TrimSpace(mbl) == "" {
		return nil, &ConfigError{Key: "bootstrap.servers", Err: errors.New("missing: set it to host:port[,host:port...]")}
	}
	for _, k := range []string{"transactional.id"} {
		if _, ok := cm[k]; ok {
			return nil, &ConfigError{Key: k, Err: errors.New("transactions are not supported")}
		}
	}

	acks, acksSet := cm["acks"]
	if !acksSet {
		acks, acksSet = cm["request.required.acks"]
	}
	ackAll := !acksSet || isAckAll(acks)
	idem, idemSet := cm["enable.idempotence"]
	switch {
	case !acksSet:
		cm["acks"] = "all"
	case idemSet && isTrue(idem) && !ackAll:
		return nil, &ConfigError{Key: "acks", Err: fmt.Errorf("acks=%v conflicts with enable.idempotence=true, which needs acks=all", acks)}
	}
	if !idemSet && ackAll {
		cm["enable.idempotence"] = true
	}

	cm["go.delivery.reports"] = true
	cm["go.delivery.report.fields"] = "none"
	cm["go.events.channel.size"] = 4096
	cm["go.produce.channel.size"] = 0
	cm["go.logs.channel.enable"] = true
	return cm, nil
}

func isAckAll(v kafka.ConfigValue) bool {
	s := strings.ToLower(strings.TrimSpace(fmt.Sprint(v)))
	return s == "all" || s == "-1"
}

func isTrue(v kafka.ConfigValue) bool {
	s := strings.ToLower(strings.TrimSpace(fmt.Sprint(v)))
	return s == "true" || s == "1"
}

var configKeyPattern = regexp.MustCompile("(?:property:? \"([^\"]+)\"|`([^`]+)`|property \"([^\"]+)\")")

// newKafkaConfigError names the key in an error librdkafka returned for a configuration.
func newKafkaConfigError(err error) error {
	key := "kafka.ConfigMap"
	if m := configKeyPattern.FindStringSubmatch(err.Error()); m != nil {
		for _, g := range m[1:] {
			if g != "" {
				key = g
				break
			}
		}
	}
	return &ConfigError{Key: key, Err: err}
}
