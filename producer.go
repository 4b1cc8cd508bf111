package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// intakeCap is how many records the intake queue holds before Produce waits for the loop to take
// them (a ProduceBatch run may overshoot it by one run).
const intakeCap = 1024

// futureBlock is how many Futures Produce allocates at once: one allocation per block instead of one
// per message. The cost is that a Future kept reachable keeps its block reachable (see Future).
const futureBlock = 16

// Producer is an asynchronous Kafka producer. Produce accepts a message into a bounded buffer and
// returns a Future at once; the producer's loop groups messages by topic into messageBatch values, its
// executor hands them to librdkafka, and its callbackManager hands each outcome to the Future, callback
// or channel. Every accepted message gets exactly one outcome. A Producer is safe for concurrent use and
// must be closed with Close.
type Producer struct {
	cfg       config
	log       *slog.Logger
	limit     *limiter.Limiter
	flushes   *flushTracker
	records   *pool[record]
	batches   *batchManager
	timeouts  *timeoutManager
	exec      *executor
	callbacks *callbackManager
	eng       engine
	flusher   *flusher
	brokers   *brokerState
	auth      *authWatch
	txn       *txnManager // nil unless transactional.id is set
	hooks     *hookSet    // &cfg.hooks
	stats     counters

	// The intake: accepted records on their way to the loop. Produce appends under intakeMu and wakes
	// the loop when the queue was empty; the loop takes the whole queue at once. From intakeCap records
	// on, Produce waits for that take: the backlog stays near the producers, small and cache-warm,
	// instead of growing to the whole buffer (WithMaxBuffered) in front of a slower engine.
	intakeMu sync.Mutex
	closed   atomic.Bool   // set once, by Close, under intakeMu
	queue    []*record     // guarded by intakeMu
	futures  []Future      // guarded by intakeMu: what is left of the block Produce takes Futures from
	drained  chan struct{} // guarded by intakeMu: made by a Produce waiting for room, closed by the loop's next take
	spare    []*record     // the loop's: the queue it took last, emptied, swapped back in next time
	wake     chan struct{} // capacity 1: the queue is not empty

	flushReq chan struct{}
	stop     chan struct{} // closed by Close
	loopDone chan struct{}

	fatal    atomic.Pointer[fatalError]
	closeErr atomic.Pointer[error] // the error messages failed by an aborted Close carry

	closeOnce sync.Once
	closeDone chan struct{}
	closeRes  error
}

// New creates a Producer for the librdkafka configuration cm (see librdkafka's CONFIGURATION.md;
// "bootstrap.servers" is required) and starts it. Unless cm says otherwise it sets acks=all and
// enable.idempotence=true; when cm sets acks to something other than all, idempotence stays off unless
// cm enables it, which then fails as a conflict. The go.* channel settings are the producer's own and
// may not be set. An invalid configuration or option fails with a *ConfigError naming the key, and
// starts nothing.
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
	if cfg.tokens != nil {
		if err := checkTokenProvider(cm); err != nil {
			return nil, err
		}
	}
	return newProducer(cfg, func(sink reportSink) (engine, error) {
		e, err := newLibrdkafkaEngine(kcm, sink, cfg.logger, cfg.tokens, len(cfg.hooks.stats) > 0)
		if err != nil {
			return nil, newKafkaConfigError(err, cm)
		}
		return e, nil
	})
}

// newProducer builds and starts a producer over the engine newEngine returns.
func newProducer(cfg config, newEngine func(reportSink) (engine, error)) (*Producer, error) {
	p := &Producer{
		cfg:       cfg,
		log:       cfg.logger,
		limit:     limiter.New(int64(cfg.maxMsgs), cfg.maxBytes),
		flushes:   newFlushTracker(),
		records:   newPool(func() *record { return new(record) }),
		timeouts:  newTimeoutManager(cfg.bufferTimeout),
		brokers:   newBrokerState(),
		wake:      make(chan struct{}, 1),
		flushReq:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	p.hooks = &p.cfg.hooks
	p.hooks.log, p.hooks.panics = p.log, &p.stats.hookPanics
	bufs := newPool(func() *recordBuf { return &recordBuf{recs: make([]*record, 0, cfg.batchSize)} })
	p.batches = newBatchManager(cfg.batchSize, time.Now, bufs)
	p.callbacks = newCallbackManager(p.log, p.limit, p.records, &p.stats, p.failureCause, cfg.kafka.messageMaxBytes, p.hooks)
	if cfg.kafka.transactional {
		p.txn = &txnManager{}
		p.callbacks.onFailure = p.txn.onFailure
	}
	eng, err := newEngine(p)
	if err != nil {
		p.timeouts.disarm()
		return nil, err
	}
	p.eng = eng
	p.flusher = newFlusher(eng)
	p.auth = newAuthWatch(p.brokers, eng.purgeQueue, p.log)
	p.exec = newExecutor(eng, cfg.workers, bufs, &p.stats, p.callbacks.fail, p.onFatal, p.flusher.enqueued)
	p.exec.hooks = p.hooks
	p.callbacks.start()
	p.exec.start()
	p.flusher.start()
	p.auth.start()
	eng.start() // only now: its reports and fatal errors reach the executor
	go p.run()
	return p, nil
}

// Produce accepts msg for sending and returns its Future. It blocks while the buffer is full
// (WithMaxBuffered), until there is room or ctx ends; ctx bounds only that wait: once Produce has
// returned the message is accepted, and cancelling ctx does not recall it. A ctx that is already done
// accepts nothing. On error the message was not accepted and gets no outcome: ErrInvalidMessage,
// ErrClosed, an error wrapping ErrFatal, or ctx's error. See Message for who owns its bytes.
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
	rec, err := p.accept(ctx, msg, true)
	if err != nil {
		return nil, err
	}
	rec.start = start
	return p.submit(ctx, true, true, rec)
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
	rec, err := p.accept(context.Background(), msg, false)
	if err != nil {
		return nil, err
	}
	rec.start = start
	return p.submit(context.Background(), false, true, rec)
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
	rec, err := p.accept(ctx, msg, true)
	if err != nil {
		return err
	}
	rec.fn, rec.ch, rec.start = fn, ch, start
	_, err = p.submit(ctx, true, false, rec)
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sizes := make([]int64, len(msgs))
	for i, m := range msgs {
		size, err := p.check(m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		sizes[i] = size
	}
	futs := make([]Future, len(msgs))
	out := make([]*Future, 0, len(msgs))
	recs := make([]*record, 0, min(len(msgs), p.cfg.batchSize, p.cfg.maxMsgs))
	for start := 0; start < len(msgs); {
		// Take as many as fit in one batch and in the buffer at once.
		end, total := start, int64(0)
		for end < len(msgs) && end-start < p.cfg.batchSize && end-start < p.cfg.maxMsgs && total+sizes[end] <= p.cfg.maxBytes {
			total += sizes[end]
			end++
		}
		if err := p.takes(); err != nil {
			return out, err
		}
		if err := p.limit.Acquire(ctx, int64(end-start), total); err != nil {
			return out, err
		}
		recs = recs[:0]
		now := time.Now() // one timestamp for the run: it was produced at once
		for i := start; i < end; i++ {
			rec := p.newRecordAt(msgs[i], sizes[i], now)
			rec.start = called
			futs[i].msg = msgs[i]
			rec.fut = &futs[i]
			recs = append(recs, rec)
		}
		if _, err := p.submit(ctx, true, false, recs...); err != nil {
			return out, err
		}
		for i := start; i < end; i++ {
			out = append(out, &futs[i])
		}
		start = end
	}
	return out, nil
}

// check validates m and checks that it can ever fit the buffer.
func (p *Producer) check(m *Message) (int64, error) {
	size, err := validateMessage(m)
	if err != nil {
		return 0, err
	}
	if size > p.cfg.kafka.messageMaxBytes {
		return 0, fmt.Errorf("%w: topic %q: %d bytes of key, value and headers is more than message.max.bytes (%d)",
			ErrInvalidMessage, m.Topic, size, p.cfg.kafka.messageMaxBytes)
	}
	if size > p.cfg.maxBytes {
		return 0, fmt.Errorf("%w: topic %q: %d bytes is more than the buffer holds (WithMaxBuffered: %d bytes)",
			ErrInvalidMessage, m.Topic, size, p.cfg.maxBytes)
	}
	return size, nil
}

// usable returns why the producer takes no more messages, or nil.
func (p *Producer) usable() error {
	if f := p.fatal.Load(); f != nil {
		return f
	}
	if p.closed.Load() {
		return ErrClosed
	}
	return nil
}

// takes returns why the producer takes no message now, or nil: usable, and for a transactional
// producer, in a transaction.
func (p *Producer) takes() error {
	if err := p.usable(); err != nil {
		return err
	}
	return p.txnNotOpen()
}

// accept validates msg, takes its room in the buffer and returns its record.
func (p *Producer) accept(ctx context.Context, msg *Message, block bool) (*record, error) {
	size, err := p.check(msg)
	if err != nil {
		return nil, err
	}
	if err := p.takes(); err != nil {
		return nil, err
	}
	if block {
		err = p.limit.Acquire(ctx, 1, size)
	} else {
		var ok bool
		if ok, err = p.limit.TryAcquire(1, size); err == nil && !ok {
			err = ErrBufferFull
		}
	}
	if err != nil {
		return nil, err
	}
	return p.newRecord(msg, size), nil
}

func (p *Producer) newRecord(msg *Message, size int64) *record {
	var now time.Time
	if msg.Timestamp.IsZero() {
		now = time.Now()
	}
	return p.newRecordAt(msg, size, now)
}

// newRecordAt returns msg's record, stamped with now unless msg has its own timestamp.
func (p *Producer) newRecordAt(msg *Message, size int64, now time.Time) *record {
	rec := p.records.get()
	rec.msg, rec.size = msg, size
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = now
	}
	// Kafka keeps milliseconds: the Delivery reports what the log holds.
	rec.ts = time.UnixMilli(ts.UnixMilli())
	return rec
}

// submit hands accepted records to the loop: it counts them towards the current Flush epoch and
// appends them to the intake queue, in order. While the queue holds intakeCap records or more it waits
// for the loop to take them (block); ctx bounds that wait. A caller that must not block (TryProduce)
// appends past intakeCap: its records already hold their room in the buffer, which bounds the queue,
// and ErrBufferFull means only that the WithMaxBuffered limits are reached. With withFuture it gives
// the one record a Future and returns it. If it fails (the producer closed or failed since the records
// were accepted, or ctx ended) it undoes their accept.
func (p *Producer) submit(ctx context.Context, block, withFuture bool, recs ...*record) (*Future, error) {
	p.intakeMu.Lock()
	err := p.usableLocked()
	for err == nil && block && len(p.queue) >= intakeCap {
		if p.drained == nil {
			p.drained = make(chan struct{})
		}
		drained := p.drained
		p.intakeMu.Unlock()
		select {
		case <-drained:
		case <-p.stop:
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.intakeMu.Lock()
		if err == nil {
			err = p.usableLocked()
		}
	}
	if err != nil {
		p.intakeMu.Unlock()
		var size int64
		for _, r := range recs {
			size += r.size
			r.reset()
			p.records.put(r)
		}
		p.limit.Release(int64(len(recs)), size)
		return nil, err
	}
	var f *Future
	if withFuture {
		if len(p.futures) == 0 {
			p.futures = make([]Future, futureBlock)
		}
		f = &p.futures[0]
		p.futures = p.futures[1:]
		f.msg = recs[0].msg
		recs[0].fut = f
	}
	e := p.flushes.add(len(recs))
	for _, r := range recs {
		r.epoch = e
	}
	wasEmpty := len(p.queue) == 0
	p.queue = append(p.queue, recs...)
	p.intakeMu.Unlock()
	p.stats.accepted.Add(uint64(len(recs)))
	if wasEmpty {
		wakeUp(p.wake)
	}
	return f, nil
}

// usableLocked is takes for a caller holding intakeMu, where closed and the transaction state are
// decided.
func (p *Producer) usableLocked() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if f := p.fatal.Load(); f != nil {
		return f
	}
	return p.txnNotOpen()
}

// Flush waits until every message accepted before the call has its outcome (its Future is done, its
// callback has run, its Result was sent), or ctx ends. It sends what the producer buffers at once,
// without waiting for the buffer timeout, and while it waits librdkafka sends what it holds at once,
// without waiting for linger.ms (as rd_kafka_flush does). Messages accepted during Flush may get their
// outcomes before it returns, but it does not wait for them. After Close it returns ErrClosed.
//
// Called from a callback or a channel send (ProduceFunc, ProduceChan), Flush returns ErrInCallback at
// once: it would wait for outcomes that only the callback goroutine it runs on can hand over.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.usable(); errors.Is(err, ErrClosed) {
		return err
	}
	if p.callbacks.inCallback() {
		return ErrInCallback
	}
	return p.sendAndWait(ctx)
}

// sendAndWait is Flush's work: it has the loop send what it buffers, keeps librdkafka flushing, and
// waits for the outcomes of every message accepted before it.
func (p *Producer) sendAndWait(ctx context.Context) error {
	p.requestFlush()
	p.flusher.begin()
	defer p.flusher.end()
	return p.flushes.wait(ctx)
}

// requestFlush asks the loop to send every batch it holds at once.
func (p *Producer) requestFlush() { wakeUp(p.flushReq) }

// Close stops taking messages (Produce returns ErrClosed from then on), sends what is buffered at once
// (without waiting for the buffer timeout or linger.ms), waits for every outcome, and releases
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
func (p *Producer) Close(ctx context.Context) error {
	first := false
	p.closeOnce.Do(func() { first = true })
	inCallback := p.callbacks.inCallback()
	if !first {
		select {
		case <-p.closeDone:
			return p.closeRes
		default:
		}
		if inCallback {
			return nil
		}
		select {
		case <-p.closeDone:
			return p.closeRes
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if inCallback {
		// Shut down on a goroutine of its own: the shutdown waits for this callback to return. It
		// ends once every outcome is handed over; closeDone tells when.
		bg, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			bg, cancel = context.WithDeadline(bg, dl)
		}
		go func() {
			defer cancel()
			p.closeRes = p.shutdown(bg)
			close(p.closeDone)
		}()
		return nil
	}
	p.closeRes = p.shutdown(ctx)
	close(p.closeDone)
	return p.closeRes
}

// errPurgedInFlight is the cause of a message that an aborted Close purged while a request carrying it
// was in flight.
var errPurgedInFlight = errors.New("purged in flight when Close's context ended: it may be in the log")

func (p *Producer) shutdown(ctx context.Context) error {
	p.intakeMu.Lock()
	p.closed.Store(true) // from now on nothing joins the intake queue
	p.intakeMu.Unlock()
	p.limit.Close(ErrClosed)
	close(p.stop)

	if p.txn != nil {
		p.abortOpenTxn(ctx)
	}
	p.flusher.begin()
	var res error
	if err := p.awaitOutcomes(ctx); err != nil {
		abortErr := fmt.Errorf("%w: message not sent: Close's context ended first: %w", ErrClosed, err)
		p.closeErr.Store(&abortErr)
		p.exec.abort(abortErr)
		if perr := p.eng.purge(); perr != nil {
			p.log.Error("aioproducer: purge failed", "error", perr)
		}
		// Every message is now failing or failed; purged ones report promptly.
		_ = p.flushes.wait(context.Background())
		res = fmt.Errorf("aioproducer: close: %w", err)
	}
	p.flusher.end()
	<-p.loopDone
	p.exec.wait()
	p.flusher.close()
	p.auth.close()
	p.eng.close()
	p.callbacks.close()
	return res
}

// awaitOutcomes waits, for Close, until every accepted message has its outcome, or ctx ends. If every
// broker is down meanwhile, it logs once that the wait lasts until the messages time out.
func (p *Producer) awaitOutcomes(ctx context.Context) error {
	warned := false
	for _, done := range p.flushes.seal() {
		for waiting := true; waiting; {
			var down <-chan struct{}
			if !warned {
				down = p.brokers.wentDown()
			}
			select {
			case <-done:
				waiting = false
			case <-ctx.Done():
				return ctx.Err()
			case <-down:
				warned = true
				select {
				case <-done: // the outcomes came at the same time: nothing to warn about
					waiting = false
				default:
					p.warnBrokersDown(ctx)
				}
			}
		}
	}
	return nil
}

// warnBrokersDown logs that Close waits for messages no broker can take, and for how long.
func (p *Producer) warnBrokersDown(ctx context.Context) {
	cause := p.brokers.unreachable()
	if cause == nil {
		return
	}
	held, _ := p.limit.Used()
	wait := fmt.Sprintf("until they time out, up to message.timeout.ms (%v) after each was produced", p.cfg.kafka.messageTimeout)
	if dl, ok := ctx.Deadline(); ok {
		wait += fmt.Sprintf(", or until Close's deadline in %v", time.Until(dl).Round(time.Millisecond))
	} else {
		wait += "; Close's context has no deadline"
	}
	p.log.Warn("aioproducer: Close is waiting for messages but "+cause.Error()+"; it waits "+wait,
		"messages", held)
}

// SetSaslCredentials replaces the SASL username and password (PLAIN, SCRAM) that librdkafka uses for
// new broker connections, for credential rotation on a live producer (rd_kafka_sasl_set_credentials;
// the Python AIOProducer's set_sasl_credentials). Connections already authenticated stay as they are.
func (p *Producer) SetSaslCredentials(username, password string) error {
	if err := p.usable(); err != nil {
		return err
	}
	if err := p.eng.setSaslCredentials(username, password); err != nil {
		return fmt.Errorf("aioproducer: set SASL credentials: %w", err)
	}
	p.brokers.clearAuth() // the new credentials may work: stop failing messages for the old ones
	return nil
}

// Stats returns a snapshot of the producer's counters.
func (p *Producer) Stats() Stats {
	s := p.stats.snapshot()
	s.HeldMessages, s.HeldBytes = p.limit.Used()
	return s
}

// onFatal handles a fatal librdkafka error: from now on every Produce fails, and every outstanding
// message fails with an error wrapping ErrFatal.
func (p *Producer) onFatal(err kafka.Error) {
	fe := &fatalError{err: err}
	if !p.fatal.CompareAndSwap(nil, fe) {
		return
	}
	p.log.Error("aioproducer: fatal error: failing every outstanding message", "error", err.Error())
	p.callbacks.postError(fe)
	p.limit.Close(fe)
	p.exec.abort(fe)
	if perr := p.eng.purge(); perr != nil {
		p.log.Error("aioproducer: purge failed", "error", perr)
	}
}

// failureCause returns what to attach to a message's failure, if the producer knows more than
// librdkafka's error: the fatal error; Close's abort for a message it purged; the unreachable brokers
// for a message that timed out while all were down.
func (p *Producer) failureCause(err error) error {
	if f := p.fatal.Load(); f != nil {
		return f
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return nil
	}
	if p.txn != nil && p.txn.get() == txnAborting && (ke.Code() == kafka.ErrPurgeQueue || ke.Code() == kafka.ErrPurgeInflight) {
		return ErrTransactionAborted
	}
	switch ke.Code() {
	case kafka.ErrPurgeQueue:
		if ce := p.closeErr.Load(); ce != nil {
			return *ce
		}
		if err := p.brokers.authFailed(); err != nil {
			return err
		}
	case kafka.ErrPurgeInflight:
		if p.closeErr.Load() != nil {
			return errPurgedInFlight
		}
	case kafka.ErrMsgTimedOut:
		if err := p.brokers.authFailed(); err != nil {
			return err
		}
		return p.brokers.unreachable()
	}
	return nil
}

// onReports, onFatal and onError make the Producer the engine's reportSink.
func (p *Producer) onReports(rs []report) {
	if p.brokers.down.Load() || p.brokers.auth.Load() != nil {
		for _, r := range rs {
			if r.err == nil {
				p.brokers.delivered()
				break
			}
		}
	}
	p.callbacks.deliver(rs)
	p.exec.space.notify()
}

func (p *Producer) onError(err kafka.Error) {
	p.callbacks.postError(err)
	if p.brokers.onError(err) {
		p.log.Warn("aioproducer: authentication failed: if it lasts, the messages librdkafka holds, and those "+
			"produced while it fails, fail with ErrAuthentication", "reason", err.Error())
	}
	if p.brokers.auth.Load() != nil && (isAuthFailure(err) || err.Code() == kafka.ErrAllBrokersDown) {
		p.auth.poke()
	}
}

func (p *Producer) onStats(raw []byte) { p.callbacks.postStats(raw) }

// run is the producer's loop: it moves accepted messages into the batchManager and sends batches to
// the executor when they are full, when their worker is idle, when the oldest message has waited the
// buffer timeout, on Flush, and on Close.
func (p *Producer) run() {
	defer close(p.loopDone)
	for {
		select {
		case <-p.wake:
			p.drainIntake()
			p.dispatchIdle()
		case <-p.exec.ready:
			p.dispatchIdle()
		case <-p.timeouts.C():
			p.timeouts.fired()
			p.dispatchDue()
		case <-p.flushReq:
			p.drainIntake()
			p.dispatchAll()
		case <-p.stop:
			p.finish()
			return
		}
		if pb := p.batches.oldest(); pb != nil {
			p.timeouts.arm(pb.oldest)
		} else {
			p.timeouts.disarm()
		}
	}
}

// finish takes what is left in the intake queue (Close has stopped it growing), sends every batch and
// closes the executor's queues.
func (p *Producer) finish() {
	p.timeouts.disarm()
	p.drainIntake()
	p.dispatchAll()
	p.exec.closeQueues()
}

func (p *Producer) add(rec *record) {
	if pb, full := p.batches.add(rec); full {
		p.dispatch(pb)
	}
}

// drainIntake takes the whole intake queue and adds its records to their batches, sending each batch
// that fills.
func (p *Producer) drainIntake() {
	p.intakeMu.Lock()
	recs := p.queue
	p.queue = p.spare
	if p.drained != nil {
		close(p.drained) // wakes the Produce calls waiting for room in the queue
		p.drained = nil
	}
	p.intakeMu.Unlock()
	for _, r := range recs {
		p.add(r)
	}
	clear(recs)
	p.spare = recs[:0]
}

// dispatch sends pb's messages to their worker, waiting for room in its queue.
func (p *Producer) dispatch(pb *pendingBatch) {
	w := p.exec.route(pb.topic)
	w.queue <- p.batches.take(pb)
}

// dispatchIdle sends the pending batches whose worker is idle: a message on an idle producer goes out
// at once, and under load batches grow while their worker is busy, until they are full or due.
func (p *Producer) dispatchIdle() {
	for i := 0; i < len(p.batches.pendingBatches()); {
		pb := p.batches.pendingBatches()[i]
		if w := p.exec.route(pb.topic); w.idle() {
			p.dispatch(pb) // removes pb from the list
			continue
		}
		i++
	}
}

// dispatchDue sends the pending batches whose oldest message has waited the buffer timeout.
func (p *Producer) dispatchDue() {
	now := time.Now()
	for {
		pb := p.batches.oldest()
		if pb == nil || !p.timeouts.due(pb.oldest, now) {
			return
		}
		p.dispatch(pb)
	}
}

// dispatchAll sends every pending batch.
func (p *Producer) dispatchAll() {
	for pb := p.batches.oldest(); pb != nil; pb = p.batches.oldest() {
		p.dispatch(pb)
	}
}
