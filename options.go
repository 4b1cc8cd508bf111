package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// Defaults of the options.
const (
	DefaultBatchSize       = 1000
	DefaultMaxBufferedMsgs = 100_000
	DefaultMaxBufferedSize = 64 << 20
	maxWorkers             = 256
)

// DefaultWorkers is the number of executor workers when WithWorkers is not given: GOMAXPROCS, at most 4.
func DefaultWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// Option configures a Producer. Options cannot fail; New validates them all at once.
type Option func(*config)

type config struct {
	batchSize  int
	workers    int
	maxMsgs    int
	maxBytes   int64
	logger     *slog.Logger
	kafka      kafkaSettings // from the librdkafka configuration
	tokens     TokenProvider
	hookList   []Hook        // as WithHooks got them
	hooks      hookSet       // hookList sorted by interface, by validate
	idleAfter  time.Duration // topicIdleAfter; tests shorten it
	stuckAfter time.Duration // unavailableAfter; tests shorten it

	partitioner    Partitioner // WithPartitioner
	partitionerSet bool        // WithPartitioner was given (a nil fn is refused)

	// smallQueue keeps the buffer as WithMaxBuffered says when the user's librdkafka queue is smaller
	// (sizeQueue): tests set it to reach the executor's queue-full path with a small queue.
	smallQueue bool
}

func defaultConfig() config {
	return config{
		batchSize:  DefaultBatchSize,
		workers:    DefaultWorkers(),
		maxMsgs:    DefaultMaxBufferedMsgs,
		maxBytes:   DefaultMaxBufferedSize,
		logger:     slog.Default(),
		kafka:      defaultKafkaSettings,
		idleAfter:  topicIdleAfter,
		stuckAfter: unavailableAfter,
	}
}

// WithBatchSize sets the most messages a worker hands to librdkafka in one call, across topics (and at
// most 4 MiB of keys, values and headers, but always at least one message). A worker takes what is
// waiting whenever it is free, so calls grow with the load and nothing waits to fill one. Default 1000;
// at least 1. librdkafka still builds its own per-partition request batches (batch.size,
// batch.num.messages, linger.ms).
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithWorkers sets the number of workers that hand messages to librdkafka. A topic always goes to the
// same worker, so order per key and partition holds with any number. Default DefaultWorkers(); 1 to 256.
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithMaxBuffered bounds the messages the producer holds, from Produce until their outcome is known
// (like the Java producer's buffer.memory, and counting messages inside librdkafka too): at most messages
// messages and bytes bytes of keys, values and headers. When it is full, Produce waits and TryProduce
// fails with ErrBufferFull. Defaults 100000 messages and 64 MiB; both at least 1. A message larger than
// bytes fails with ErrInvalidMessage.
//
// It is the producer's one buffer: librdkafka's own queue is sized so that it never holds a message
// back. Unless the configuration sets them, New sets queue.buffering.max.messages and
// queue.buffering.max.kbytes to at least these limits (librdkafka's defaults, 100000 messages and 1 GiB,
// when those are larger; its maxima, 2147483647 of each, cap them). When the configuration sets them
// smaller, the buffer takes their values instead (queue.buffering.max.kbytes × 1024 bytes;
// queue.buffering.max.messages=0 sets no limit): Produce then waits, and TryProduce fails, when
// librdkafka's queue would be full. So a message waits before librdkafka gets it only for a worker,
// and message.timeout.ms bounds its outcome (see Produce).
func WithMaxBuffered(messages int, bytes int64) Option {
	return func(c *config) { c.maxMsgs, c.maxBytes = messages, bytes }
}

// WithLogger sets the logger for the producer's own events and for librdkafka's log lines (syslog levels
// mapped to slog levels). Default slog.Default(). It must not be nil.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// TokenProvider returns a SASL/OAUTHBEARER token when librdkafka asks for one: at start, and before
// the current token expires. config is the value of sasl.oauthbearer.config. ctx ends when the
// producer closes. An error makes librdkafka ask again later; it is logged, so it must not contain a
// secret.
type TokenProvider func(ctx context.Context, config string) (kafka.OAuthBearerToken, error)

// WithOAuthBearerTokenProvider makes the producer get its SASL/OAUTHBEARER tokens from fn (the
// application's own token, as confluent-kafka-go's OAuthBearerTokenRefresh event and
// SetOAuthBearerToken give it). It needs sasl.mechanism=OAUTHBEARER, and neither
// sasl.oauthbearer.method=oidc (librdkafka's built-in OIDC client) nor
// enable.sasl.oauthbearer.unsecure.jwt=true. fn runs on a goroutine of its own, one call at a time;
// it may block (an HTTP call to a token endpoint) without delaying deliveries. Default: none.
func WithOAuthBearerTokenProvider(fn TokenProvider) Option { return func(c *config) { c.tokens = fn } }

// WithHooks registers hooks: values that implement one or more of HookProduce, HookDelivery,
// HookBatch, HookError and HookStats (see Hook), for metrics and tracing. Each is called for the events
// of the interfaces it implements, in the order given; WithHooks given more than once adds to the
// list. New fails with a *ConfigError if a hook implements none of them. Default: none, and an event
// no hook wants costs nothing.
func WithHooks(hooks ...Hook) Option {
	return func(c *config) { c.hookList = append(c.hookList, hooks...) }
}

func (c *config) validate() error {
	switch {
	case c.batchSize < 1:
		return &ConfigError{Key: "WithBatchSize", Err: fmt.Errorf("batch size %d is less than 1", c.batchSize)}
	case c.workers < 1 || c.workers > maxWorkers:
		return &ConfigError{Key: "WithWorkers", Err: fmt.Errorf("%d workers is not within 1 to %d", c.workers, maxWorkers)}
	case c.maxMsgs < 1:
		return &ConfigError{Key: "WithMaxBuffered", Err: fmt.Errorf("message limit %d is less than 1", c.maxMsgs)}
	case c.maxBytes < 1:
		return &ConfigError{Key: "WithMaxBuffered", Err: fmt.Errorf("byte limit %d is less than 1", c.maxBytes)}
	case c.logger == nil:
		return &ConfigError{Key: "WithLogger", Err: errors.New("nil logger")}
	case c.partitionerSet && c.partitioner == nil:
		return &ConfigError{Key: "WithPartitioner", Err: errors.New("nil Partitioner")}
	}
	hooks, err := newHookSet(c.hookList)
	if err != nil {
		return err
	}
	c.hooks = hooks
	return nil
}

// managedKeys are librdkafka settings the producer sets itself; a user value would break it. Every go.*
// key (confluent-kafka-go's own channel settings) is refused as well.
var managedKeys = []string{"delivery.report.only.error", "dr_cb", "dr_msg_cb"}

// kafkaSettings are the values of the user's librdkafka configuration the producer itself needs.
type kafkaSettings struct {
	messageTimeout  time.Duration // message.timeout.ms (delivery.timeout.ms)
	messageMaxBytes int64         // message.max.bytes
	transactional   bool          // transactional.id is set
	queueMsgs       int64         // queue.buffering.max.messages; -1 unless set (0: no limit)
	queueKBytes     int64         // queue.buffering.max.kbytes; -1 unless set
}

// librdkafka's defaults for kafkaSettings.
const (
	defaultMessageTimeout  = 300 * time.Second
	defaultMessageMaxBytes = 1_000_000
)

// defaultKafkaSettings are kafkaSettings for a configuration that sets none of their keys.
var defaultKafkaSettings = kafkaSettings{
	messageTimeout: defaultMessageTimeout, messageMaxBytes: defaultMessageMaxBytes, queueMsgs: -1, queueKBytes: -1,
}

// librdkafka's defaults and maxima of queue.buffering.max.messages and queue.buffering.max.kbytes.
const (
	defaultQueueMsgs   = 100_000
	defaultQueueKBytes = 1 << 20 // 1 GiB
	maxQueueSetting    = 1<<31 - 1
)

// sizeQueue makes the buffer (WithMaxBuffered) the producer's one bound: it sets librdkafka's queue
// limits in cm to at least the buffer's where the user set none, and lowers the buffer to the user's
// where they are smaller, so that librdkafka's queue is never full while the buffer has room (but for
// a moment: librdkafka frees a message's room when its report event is destroyed, just after the
// outcome). A message then waits before librdkafka gets it only for its worker, and its outcome comes
// within message.timeout.ms of Produce plus that wait (deadline.go). The limiter counts key, value and
// headers, librdkafka only the value, so the bytes bound is the limiter's too. With smallQueue the
// buffer keeps its limits (tests of the queue-full path).
func sizeQueue(cm kafka.ConfigMap, cfg *config) {
	msgs := cfg.kafka.queueMsgs
	if msgs < 0 {
		msgs = min(max(defaultQueueMsgs, int64(cfg.maxMsgs)), maxQueueSetting)
		cm["queue.buffering.max.messages"] = int(msgs)
	}
	kb := cfg.kafka.queueKBytes
	if kb < 0 {
		kb = min(max(defaultQueueKBytes, ceilDiv(cfg.maxBytes, 1024)), maxQueueSetting)
		cm["queue.buffering.max.kbytes"] = int(kb)
	}
	if cfg.smallQueue {
		return
	}
	if msgs > 0 && msgs < int64(cfg.maxMsgs) {
		cfg.maxMsgs = int(msgs)
	}
	cfg.maxBytes = min(cfg.maxBytes, kb*1024)
}

// ceilDiv is a/b rounded up, for a ≥ 0 and b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// kafkaConfig checks the user's librdkafka configuration and returns the one the producer uses: a copy
// with safe defaults (acks=all and enable.idempotence=true unless the user chose otherwise) and the
// settings the producer manages. Every key is checked here, one at a time: its value must be a string, bool or int (what confluent-kafka-go takes), and librdkafka must accept it; the
// *ConfigError names the key as the user wrote it (librdkafka's own text may name the property an alias
// stands for, as queue.buffering.max.ms for linger.ms). librdkafka checks how the settings combine in New.
func kafkaConfig(user kafka.ConfigMap) (kafka.ConfigMap, kafkaSettings, error) {
	ks := defaultKafkaSettings
	cm := kafka.ConfigMap{}
	for k, v := range user {
		cm[k] = v
	}
	if err := checkSettings(cm, &ks); err != nil {
		return nil, ks, err
	}
	bs, _ := cm["bootstrap.servers"].(string)
	mbl, _ := cm["metadata.broker.list"].(string)
	if strings.TrimSpace(bs) == "" && strings.TrimSpace(mbl) == "" {
		return nil, ks, &ConfigError{Key: "bootstrap.servers", Err: errors.New("missing: set it to host:port[,host:port...]")}
	}
	if id, ok := cm["transactional.id"]; ok && fmt.Sprint(id) != "" {
		ks.transactional = true
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
		return nil, ks, &ConfigError{Key: "acks", Err: fmt.Errorf("acks=%v conflicts with enable.idempotence=true, which needs acks=all", acks)}
	}
	if !idemSet && ackAll {
		cm["enable.idempotence"] = true
	}
	return cm, ks, nil
}

// checkSettings checks every key of cm (and of a nested default.topic.config) and reads the values ks
// holds.
func checkSettings(cm kafka.ConfigMap, ks *kafkaSettings) error {
	for _, k := range sortedKeys(cm) {
		v := cm[k]
		if strings.HasPrefix(k, "go.") || slices.Contains(managedKeys, k) {
			return &ConfigError{Key: k, Err: errors.New("set by aioproducer itself (it reads librdkafka's reports and logs on its own; go.* keys are confluent-kafka-go's channel settings, which it does not use); remove it")}
		}
		if sub, ok := v.(kafka.ConfigMap); ok && k == "default.topic.config" {
			if err := checkSettings(sub, ks); err != nil {
				return err
			}
			continue
		}
		s, err := settingValue(v)
		if err != nil {
			return &ConfigError{Key: k, Err: err}
		}
		if err := rdk.CheckSetting(k, s); err != nil {
			var ce *rdk.ConfigError
			if errors.As(err, &ce) {
				return &ConfigError{Key: k, Err: ce.Err}
			}
			return &ConfigError{Key: k, Err: err}
		}
		switch k {
		case "message.timeout.ms", "delivery.timeout.ms":
			if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
				ks.messageTimeout = time.Duration(ms) * time.Millisecond
			}
		case "message.max.bytes":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				ks.messageMaxBytes = n
			}
		case "queue.buffering.max.messages":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				ks.queueMsgs = n
			}
		case "queue.buffering.max.kbytes":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				ks.queueKBytes = n
			}
		}
	}
	return nil
}

func sortedKeys(cm kafka.ConfigMap) []string {
	keys := make([]string, 0, len(cm))
	for k := range cm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// settingValue is v as librdkafka takes it, converted as confluent-kafka-go converts it (a string, bool
// or int, a fmt.Stringer, or a list of those joined by commas), so that a ConfigMap written for
// confluent-kafka-go's kafka.Producer means the same here.
func settingValue(v kafka.ConfigValue) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case []kafka.ConfigValue:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := settingValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	// The value itself is not shown: it may be a secret (sasl.password, ssl.key.password, ...).
	return "", fmt.Errorf("a value of type %T: want a string, bool or int", v)
}

// checkTokenProvider checks that cm lets the application supply OAUTHBEARER tokens.
func checkTokenProvider(cm kafka.ConfigMap) error {
	const key = "WithOAuthBearerTokenProvider"
	if m, _ := settingValue(cm["sasl.mechanism"]); !strings.EqualFold(m, "OAUTHBEARER") {
		if m2, _ := settingValue(cm["sasl.mechanisms"]); !strings.EqualFold(m2, "OAUTHBEARER") {
			return &ConfigError{Key: key, Err: errors.New("needs sasl.mechanism=OAUTHBEARER")}
		}
	}
	if m, _ := settingValue(cm["sasl.oauthbearer.method"]); strings.EqualFold(m, "oidc") {
		return &ConfigError{Key: key, Err: errors.New("conflicts with sasl.oauthbearer.method=oidc, which makes librdkafka fetch the tokens itself")}
	}
	if v, ok := cm["enable.sasl.oauthbearer.unsecure.jwt"]; ok && isTrue(v) {
		return &ConfigError{Key: key, Err: errors.New("conflicts with enable.sasl.oauthbearer.unsecure.jwt=true, which makes librdkafka build the tokens itself")}
	}
	return nil
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

// newKafkaConfigError names the key in an error librdkafka returned when it created the client from
// user's settings (each was accepted alone: it is how they combine that failed): the property the text
// quotes, else the longest of the user's keys the text mentions, else "kafka.ConfigMap".
func newKafkaConfigError(err error, user kafka.ConfigMap) error {
	text := err.Error()
	if m := configKeyPattern.FindStringSubmatch(text); m != nil {
		for _, g := range m[1:] {
			if g != "" {
				return &ConfigError{Key: g, Err: err}
			}
		}
	}
	key := ""
	lower := strings.ToLower(text)
	for k := range user {
		if len(k) > len(key) && (strings.Contains(text, k) || strings.Contains(lower, strings.ReplaceAll(k, ".", " "))) {
			key = k // "SASL mechanism" names sasl.mechanism
		}
	}
	if key == "" {
		key = "kafka.ConfigMap"
	}
	return &ConfigError{Key: key, Err: err}
}
