package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// Producer is an asynchronous Kafka producer. Produce accepts a message into a bounded buffer and
// returns a Future at once; the producer's dispatcher groups messages by topic into messageBatch values
// and its workers hand them to librdkafka, many topics per call; its callbackManager hands each outcome
// to the Future, callback or channel. Every accepted message gets exactly one outcome. A Producer is
// safe for concurrent use and must be closed with Close.
//
// Its parts, each in a file of its own (DESIGN.md has the map): the intake (intake.go: accept, bound,
// hand over), the dispatcher and its batchManagers (dispatcher.go, batch.go), the executor
// (executor.go), the engine (engine.go), the callbackManager and the reportRouter (callback.go), the
// transactions (transaction.go) and the shutdown path (shutdown.go).
type Producer struct {
	cfg       config
	hooks     *hookSet // &cfg.hooks
	stats     *counters
	limit     *limiter.Limiter
	state     *producerState
	in        *intake
	disp      *dispatcher
	exec      *executor
	callbacks *callbackManager
	flushes   *flushTracker
	flusher   *flusher
	eng       engine
	brokers   *brokerState
	auth      *brokerWatch
	txn       *txnManager // nil unless transactional.id is set
	closer    *closer
	purgeMu   sync.Mutex // one Purge at a time
}

// New creates a Producer for the librdkafka configuration cm (see librdkafka's CONFIGURATION.md;
// "bootstrap.servers" is required) and starts it. Unless cm says otherwise it sets acks=all and
// enable.idempotence=true; when cm sets acks to something other than all, idempotence stays off unless
// cm enables it, which then fails as a conflict. The go.* channel settings of confluent-kafka-go may
// not be set. An invalid configuration or option fails with a *ConfigError naming the key, and starts
// nothing.
func New(cm kafka.ConfigMap, opts ...Option) (*Producer, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kcm, ks, err := kafkaConfig(cm)
	if err != nil {
		return nil, err
	}
	cfg.kafka = ks
	sizeQueue(kcm, &cfg)
	if cfg.tokens != nil {
		if err := checkTokenProvider(cm); err != nil {
			return nil, err
		}
	}
	eng, err := newLibrdkafkaEngine(kcm, cfg.logger, cfg.tokens, len(cfg.hooks.stats) > 0, cfg.stuckAfter)
	if err != nil {
		return nil, newKafkaConfigError(err, cm)
	}
	return newProducer(cfg, eng), nil
}

// newProducer builds the producer's parts around eng, which it starts last.
func newProducer(cfg config, eng engine) *Producer {
	p := &Producer{cfg: cfg, eng: eng, stats: &counters{}}
	p.hooks = &p.cfg.hooks
	log := cfg.logger
	p.hooks.log, p.hooks.panics = log, &p.stats.hookPanics
	p.limit = limiter.New(int64(cfg.maxMsgs), cfg.maxBytes)
	p.flushes = newFlushTracker()
	p.brokers = newBrokerState()
	p.state = newProducerState(p.brokers, cfg.kafka.transactional)
	records := newPool(func() *record { return new(record) })
	stuck := newStuckBudget(cfg.maxMsgs, cfg.maxBytes)
	p.callbacks = newCallbackManager(log, p.limit, stuck, records, p.stats, p.state, cfg.kafka.messageMaxBytes, p.hooks)
	p.flusher = newFlusher(eng)
	dls := newDeadlines(cfg.kafka.messageTimeout)
	p.exec = newExecutor(eng, p.state, p.limit, p.callbacks, p.flusher, &notifier{}, dls, p.stats, p.hooks, log)
	p.disp = newDispatcher(cfg.workers, cfg.batchSize, cfg.idleAfter, p.exec, eng, p.state, p.flushes, p.stats)
	p.in = newIntake(&p.cfg, p.limit, stuck, eng, records, dls, p.disp, p.state)
	p.auth = newBrokerWatch(p.brokers, eng, log)
	if cfg.kafka.transactional {
		p.txn = newTxnManager(eng, p.exec, p.disp, p.flushes, p.flusher, p.state, log)
	}
	p.closer = &closer{
		state: p.state, limit: p.limit, disp: p.disp, exec: p.exec, eng: eng, flushes: p.flushes, flusher: p.flusher,
		auth: p.auth, callbacks: p.callbacks, txn: p.txn, brokers: p.brokers, log: log,
		timeout: cfg.kafka.messageTimeout, done: make(chan struct{}),
	}
	p.callbacks.start()
	p.disp.start()
	p.flusher.start()
	p.auth.start()
	// Only now: its reports and fatal errors reach the parts above.
	eng.start(&reportRouter{callbacks: p.callbacks, brokers: p.brokers, auth: p.auth, exec: p.exec, stats: p.stats, log: log})
	return p
}

// Produce accepts msg for sending and returns its Future. It blocks while the buffer is full
// (WithMaxBuffered), until there is room or ctx ends; ctx bounds only that wait: once Produce has
// returned the message is accepted, and cancelling ctx does not recall it. A ctx that is already done
// accepts nothing. On error the message was not accepted and gets no outcome: ErrInvalidMessage,
// ErrClosed, an error wrapping ErrFatal, or ctx's error. See Message for who owns its bytes.
//
// What bounds the outcome: message.timeout.ms (delivery.timeout.ms; 5 minutes by default), T, counts
// from Produce returning. A message librdkafka has not taken T after it was accepted fails then, in
// the producer, with librdkafka's timeout error (kafka.ErrMsgTimedOut, not in the log: IsOutcomeUnknown
// is false); one it took has librdkafka's whole T from then, retries included. The outcome so comes
// within T plus the wait before librdkafka takes the message, which New keeps to a worker's latency
// (WithMaxBuffered: librdkafka's queue never holds the buffer back; milliseconds, see DESIGN.md), plus
// how late librdkafka's own timeout check runs (under 200 ms on the mock cluster). With
// message.timeout.ms=0 (infinite) nothing bounds it.
func (p *Producer) Produce(ctx context.Context, msg *Message) (*Future, error) {
	if !p.hooks.perMessage() || msg == nil {
		return p.produce(ctx, msg, time.Time{})
	}
	start := p.hooks.produced(ctx, msg)
	f, err := p.produce(ctx, msg, start)
	if err != nil {
		p.hooks.refused(msg, err, start)
	}
	return f, err
}

func (p *Producer) produce(ctx context.Context, msg *Message, start time.Time) (*Future, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := p.in.accept(ctx, msg, true)
	if err != nil {
		return nil, err
	}
	rec.start = start
	return p.in.handOver([]*record{rec}, true)
}

// TryProduce is Produce that never blocks: when the buffer is full (the limits of WithMaxBuffered are
// reached) it fails with ErrBufferFull.
func (p *Producer) TryProduce(msg *Message) (*Future, error) {
	if !p.hooks.perMessage() || msg == nil {
		return p.tryProduce(msg, time.Time{})
	}
	start := p.hooks.produced(context.Background(), msg)
	f, err := p.tryProduce(msg, start)
	if err != nil {
		p.hooks.refused(msg, err, start)
	}
	return f, err
}

func (p *Producer) tryProduce(msg *Message, start time.Time) (*Future, error) {
	rec, err := p.in.accept(context.Background(), msg, false)
	if err != nil {
		return nil, err
	}
	rec.start = start
	return p.in.handOver([]*record{rec}, true)
}

// ProduceFunc is Produce with a callback instead of a Future: fn gets the delivery or the error, once,
// unless ProduceFunc returns an error. Callbacks run one at a time on the producer's callback
// goroutine, in the order outcomes arrive, outside every lock. fn must not block: a slow callback delays
// the other callbacks and result channels (never the draining of librdkafka's reports), and Flush and
// Close wait for it. A callback that panics is recovered and logged; it costs no other outcome.
//
// A nil fn is a programming error: ProduceFunc refuses it with an error that is not ErrInvalidMessage.
func (p *Producer) ProduceFunc(ctx context.Context, msg *Message, fn func(Delivery, error)) error {
	if fn == nil {
		return errors.New("aioproducer: ProduceFunc called with a nil callback: pass the func that takes the outcome")
	}
	return p.produceTo(ctx, msg, fn, nil)
}

// produceTo is ProduceFunc (fn) and ProduceChan (ch), once their argument is checked.
func (p *Producer) produceTo(ctx context.Context, msg *Message, fn func(Delivery, error), ch chan<- Result) error {
	if !p.hooks.perMessage() || msg == nil {
		return p.produceToAt(ctx, msg, fn, ch, time.Time{})
	}
	start := p.hooks.produced(ctx, msg)
	err := p.produceToAt(ctx, msg, fn, ch, start)
	if err != nil {
		p.hooks.refused(msg, err, start)
	}
	return err
}

func (p *Producer) produceToAt(ctx context.Context, msg *Message, fn func(Delivery, error), ch chan<- Result, start time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, err := p.in.accept(ctx, msg, true)
	if err != nil {
		return err
	}
	rec.fn, rec.ch, rec.start = fn, ch, start
	_, err = p.in.handOver([]*record{rec}, false)
	return err
}

// ProduceChan is Produce that sends the outcome, as a Result naming msg, on ch. The send happens on the
// callback goroutine, as ProduceFunc's callbacks do: give ch room (or read it promptly), since a
// blocked send delays every other callback, and Flush and Close wait for it.
//
// A nil ch is a programming error: ProduceChan refuses it with an error that is not ErrInvalidMessage.
func (p *Producer) ProduceChan(ctx context.Context, msg *Message, ch chan<- Result) error {
	if ch == nil {
		return errors.New("aioproducer: ProduceChan called with a nil channel: pass the channel that takes the Result")
	}
	return p.produceTo(ctx, msg, nil, ch)
}

// ProduceBatch accepts msgs in order and returns their Futures. It checks every message first: if one
// is invalid, none is accepted and the error names its index. Otherwise it accepts them as buffer room
// allows; if ctx ends or the producer closes part way, it returns the Futures of the messages accepted
// so far, which get their outcomes as usual, with the error.
func (p *Producer) ProduceBatch(ctx context.Context, msgs []*Message) ([]*Future, error) {
	if !p.hooks.perMessage() {
		return p.produceBatch(ctx, msgs, time.Time{})
	}
	start := p.hooks.now()
	for _, m := range msgs {
		if m != nil {
			p.hooks.runProduce(ctx, m)
		}
	}
	out, err := p.produceBatch(ctx, msgs, start)
	if err != nil {
		// The messages after the accepted ones were refused.
		for _, m := range msgs[len(out):] {
			if m != nil {
				p.hooks.refused(m, err, start)
			}
		}
	}
	return out, err
}

func (p *Producer) produceBatch(ctx context.Context, msgs []*Message, called time.Time) ([]*Future, error) {
	return p.in.acceptBatch(ctx, msgs, called)
}

// Flush waits until every message accepted before the call has its outcome (its Future is done, its
// callback has run, its Result was sent), or ctx ends. The producer's workers hand what it buffers to
// librdkafka whenever they are free, and while Flush waits librdkafka sends what it holds at once,
// without waiting for linger.ms (as rd_kafka_flush does). Messages accepted during Flush may get their
// outcomes before it returns, but it does not wait for them. After Close it returns ErrClosed.
//
// Called from a callback or a channel send (ProduceFunc, ProduceChan), Flush returns ErrInCallback at
// once: it would wait for outcomes that only the callback goroutine it runs on can hand over.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.state.usable(); errors.Is(err, ErrClosed) {
		return err
	}
	if p.callbacks.inCallback() {
		return ErrInCallback
	}
	return flushAndWait(ctx, p.flushes, p.flusher)
}

// Close stops taking messages (Produce returns ErrClosed from then on), sends what is buffered at once
// (without waiting for linger.ms), waits for every outcome, and releases
// librdkafka. If ctx ends first, it fails what was never sent with an error wrapping ErrClosed ("not
// sent"), purges what librdkafka holds (a message purged in flight may be in the log: IsOutcomeUnknown
// is true for it), waits for those outcomes, and returns an error wrapping ctx's. Either way every
// accepted message has its outcome when Close returns, and no goroutine of the producer is left.
//
// Give Close a deadline: with no broker reachable, the wait lasts until librdkafka times the messages
// out (message.timeout.ms, 5 minutes by default). While Close waits with every broker down, the
// producer logs a warning that names the brokers' last error.
//
// Close is idempotent: a second call waits for the first (or for its own ctx) and returns its result;
// once the first has finished, that result wins over a done ctx.
//
// Called from a callback or a channel send (ProduceFunc, ProduceChan), Close cannot wait for the
// callbacks that come after its own, which run on the goroutine it is called from: it stops intake,
// lets the shutdown go on by itself and returns nil at once. That shutdown is bounded by ctx's
// deadline, if it has one, but not by its cancellation: the context of a call that has returned is
// usually cancelled right after (defer cancel()). The callbacks still pending run once the calling
// callback returns; a later Close from another goroutine waits for the shutdown to end and returns
// its result.
func (p *Producer) Close(ctx context.Context) error { return p.closer.close(ctx) }

// SetSaslCredentials replaces the SASL username and password (PLAIN, SCRAM) that librdkafka uses for
// new broker connections, for credential rotation on a live producer (rd_kafka_sasl_set_credentials;
// the Python AIOProducer's set_sasl_credentials). Connections already authenticated stay as they are.
func (p *Producer) SetSaslCredentials(username, password string) error {
	if err := p.state.usable(); err != nil {
		return err
	}
	var err error
	if !p.closer.withEngine(func() { err = p.eng.setSaslCredentials(username, password) }) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("aioproducer: set SASL credentials: %w", err)
	}
	p.brokers.clearAuth() // the new credentials may work: stop failing messages for the old ones
	return nil
}

// Purge fails at once every accepted message that has not been sent to a broker: those in the
// producer's buffer and those queued in librdkafka. Their outcomes are *DeliveryError values wrapping ErrPurged
// and kafka.ErrPurgeQueue: not in the log, so IsOutcomeUnknown is false and producing them again
// duplicates nothing (unless librdkafka had sent one before and queued it again for a retry: see
// ErrPurged). Messages in
// flight, in a produce request a broker has not answered yet, keep their real outcome. The producer
// stays open: what is produced after Purge returns is sent as usual. Purge returns once every purged
// message has its outcome (its Future is done, its callback has run, its Result was sent), or when ctx
// ends, with an error wrapping ctx's; the purge then goes on by itself.
//
// It is for dropping what is buffered without closing: a tenant deleted, a deploy aborted, a backlog
// that is no longer worth sending (confluent-kafka-go's Purge with PurgeQueue, franz-go's
// AbortBufferedRecords, the Python AIOProducer's purge). Messages accepted while Purge runs may be
// purged too. On a transactional producer it waits for a transactional call in progress, and a
// purged message fails the open transaction, as any failed message does: abort it. After Close it
// returns ErrClosed; after a fatal error, the fatal error (every message has failed already).
//
// Called from a callback or a channel send, it does not wait for the callbacks of the purged
// messages, which run on the goroutine it is called from, once it returns.
func (p *Producer) Purge(ctx context.Context) error {
	if err := p.state.usable(); err != nil {
		return err
	}
	if p.txn != nil {
		p.txn.mu.Lock()
		defer p.txn.mu.Unlock()
	}
	p.purgeMu.Lock()
	defer p.purgeMu.Unlock()
	p.state.purging.Add(1)
	defer p.state.purging.Add(-1)
	// From here on the workers fail what they would hand to librdkafka, and a worker waiting for
	// room in librdkafka's queue looks again at once.
	p.exec.discard(errPurgeQueue) // librdkafka's own error: every purged message reads alike
	defer p.exec.discard(nil)
	p.exec.space.notify()
	var err error
	if !p.closer.withEngine(func() { err = p.eng.purgeQueue() }) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("aioproducer: purge: %w", err)
	}
	if err := p.disp.settle(ctx); err != nil {
		return fmt.Errorf("aioproducer: purge: waiting for the workers: %w", err)
	}
	if err := p.eng.drain(ctx); err != nil {
		return fmt.Errorf("aioproducer: purge: waiting for librdkafka's reports: %w", err)
	}
	if !p.callbacks.inCallback() {
		if err := p.callbacks.settle(ctx); err != nil {
			return fmt.Errorf("aioproducer: purge: waiting for the callbacks: %w", err)
		}
	}
	return nil
}

// Health returns nil while the producer can deliver messages, and otherwise why not: an error
// wrapping ErrClosed once Close has begun, ErrFatal after a fatal librdkafka error (close the producer
// and make a new one), ErrAuthentication while a broker refuses the credentials, or ErrBrokersDown
// while librdkafka can reach no broker (its text says since when and names the last connection
// error). The brokers count as back once one answers: a delivery, or the metadata request the
// producer makes every second while they are down.
//
// It reads a few atomics and takes no lock on the message path, so a readiness probe may call it as
// often as it likes (franz-go's Ping asks a broker instead; this asks nothing). Before the first
// connection it returns nil: a producer whose brokers were never reached is not known to be down
// until librdkafka says so, after its first attempts fail (a few seconds at most).
func (p *Producer) Health() error {
	if p.state.closing() {
		return ErrClosed
	}
	if f := p.state.fatal.Load(); f != nil {
		return f
	}
	if err := p.brokers.authFailed(); err != nil {
		return err
	}
	if err := p.brokers.unreachable(); err != nil {
		return fmt.Errorf("aioproducer: %w", err)
	}
	return nil
}

// Partitions returns topic's partition count, as the Java producer's partitionsFor(topic).size() does:
// from what the producer knows of the cluster's metadata, asking the cluster when it knows nothing of
// topic yet and waiting for the answer until ctx ends. The count is the one a Partitioner (see
// WithPartitioner) is given; a count learned more than 5 minutes ago is returned, and asked for again.
// A topic that does not exist fails with the metadata error, which names the topic and wraps the
// kafka.Error (kafka.ErrUnknownTopicOrPart): unless the cluster creates topics on first use
// (allow.auto.create.topics, the broker's auto.create.topics.enable), which asking for the count then
// does. An invalid topic name fails with ErrInvalidMessage; after Close, Partitions returns ErrClosed.
// On aioproducertest.Fake it returns the count aioproducertest.WithPartitions gave the topic, else 1.
func (p *Producer) Partitions(ctx context.Context, topic string) (int32, error) {
	if err := p.state.usable(); err != nil {
		return 0, err
	}
	if err := validateTopic(topic); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return p.eng.partitions(ctx, topic)
}

// Stats returns a snapshot of the producer's counters.
func (p *Producer) Stats() Stats {
	s := p.stats.snapshot()
	s.HeldMessages, s.HeldBytes = p.limit.Used()
	return s
}
