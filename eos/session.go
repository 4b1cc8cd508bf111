// Package eos runs an exactly-once consume-transform-produce loop: a Session reads its input topics
// with a confluent-kafka-go consumer in a consumer group, hands each batch to the application's
// Transform, which writes outputs with a transactional aioproducer.Producer, and commits the outputs
// and the batch's consumer offsets in one transaction. Readers downstream with
// isolation.level=read_committed see the output of every input exactly once, across rebalances,
// crashes and restarts.
//
//	s, err := eos.New(consumerConfig, producerConfig, []string{"in"}, transform)
//	if err != nil { ... }
//	defer s.Close(ctx)         // aborts an open transaction, leaves the group, closes the producer
//	err = s.Run(ctx)           // until ctx ends, Close, a transform error or a fatal error
//
// Each transaction runs: poll a batch (WithBatch) → BeginTransaction → the transform →
// SendOffsetsToTransaction (each partition's last offset + 1, with the consumer's group metadata) →
// CommitTransaction. What can go wrong, and what the session does:
//
//   - A retriable error (a coordinator loading or moving, a timeout): the producer retries, and the
//     session calls again, with backoff, until Run's ctx ends.
//   - An error for which aioproducer.TxnRequiresAbort is true (an output that failed, a consumer
//     group generation that moved on): abort, seek the batch's partitions back to the group's
//     committed offsets, and go on: the batch is read and transformed again.
//   - The assignment was lost while the transaction ran (the group moved on: max.poll.interval.ms
//     passed): abort and rewind, as above; the next poll serves the revocation.
//   - A partition revoked by a rebalance: librdkafka serves rebalances only in Poll, which the
//     session calls between transactions, never during one, so the open transaction ends first. The
//     batch being polled drops the revoked partitions' messages; their new owner starts from the
//     committed offsets.
//   - The transform returns an error: abort, rewind, and Run returns a *TransformError. Nothing of
//     the batch was committed; a new session (or a restart) begins with it again.
//   - A fatal error, fencing included (another instance with the same transactional.id called
//     InitTransactions): Run returns an error wrapping aioproducer.ErrFatal and librdkafka's
//     kafka.Error. Close the session; the other instance goes on from the committed offsets.
package eos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// ErrClosed is returned by Run when Close stopped it, and by Run called after Close.
var ErrClosed = errors.New("aioproducer/eos: session closed")

// Session is an exactly-once consume-transform-produce loop. It owns its consumer and its
// transactional producer: Run runs the loop, Close stops it and closes both.
type Session struct {
	c      *kafka.Consumer
	p      *aioproducer.Producer
	topics []string
	fn     Transform
	cfg    config
	log    *slog.Logger

	mu        sync.Mutex
	started   bool                    // Run was called
	closing   bool                    // Close was called
	cancelRun context.CancelCauseFunc // ends Run's ctx; set while Run runs
	abandoned bool                    // Close stopped waiting for Run: Run shuts the session down
	runDone   chan struct{}           // closed when Run returns
	logsDone  chan struct{}           // closed when forwardLogs returns, after the consumer's Close
	closed    chan struct{}           // closed when the shutdown is over, closeErr set
	closeErr  error

	// Run's goroutine, then the shutdown's, which begins after Run returned.
	inTxn bool             // a transaction is open
	batch []*kafka.Message // the batch being polled; the rebalance callback drops revoked partitions
}

// New returns a Session reading topics with a consumer configured by consumer and writing with a
// transactional producer configured by producer (aioproducer.New with WithProducerOptions' options).
//
// consumer must set group.id; the session sets isolation.level=read_committed (read only committed
// input) and enable.auto.commit=false (the transactions commit the offsets), and refuses a
// configuration that sets them otherwise. auto.offset.reset says where a group without committed
// offsets begins. producer must set transactional.id, unique to the instance and stable across its
// restarts: a restarted instance fences its predecessor and aborts what that one left open. Nothing is
// started on a configuration error.
func New(consumer, producer kafka.ConfigMap, topics []string, fn Transform, opts ...Option) (*Session, error) {
	cfg := config{maxBatch: DefaultMaxBatch, maxWait: DefaultMaxWait, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(producer, topics, fn); err != nil {
		return nil, err
	}
	cm, err := consumerConfig(consumer)
	if err != nil {
		return nil, err
	}
	p, err := aioproducer.New(producer, cfg.producerOpts...)
	if err != nil {
		return nil, fmt.Errorf("aioproducer/eos: the producer: %w", err)
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		return nil, fmt.Errorf("aioproducer/eos: the consumer: %w", err)
	}
	s := &Session{
		c: c, p: p, topics: slices.Clone(topics), fn: fn, cfg: cfg, log: cfg.log,
		runDone: make(chan struct{}), closed: make(chan struct{}), logsDone: make(chan struct{}),
	}
	go s.forwardLogs()
	return s, nil
}

// forwardLogs writes the consumer's librdkafka log lines to the session's logger until the consumer
// is closed, which closes its Logs channel. librdkafka's levels are syslog's: up to 4 (warning) as
// Warn (a broker that cannot be reached heals, as the producer logs it), 5 and 6 as Info, 7 as Debug.
func (s *Session) forwardLogs() {
	defer close(s.logsDone)
	for l := range s.c.Logs() {
		level := slog.LevelDebug
		switch {
		case l.Level <= 4:
			level = slog.LevelWarn
		case l.Level <= 6:
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "librdkafka consumer: "+l.Message, "tag", l.Tag, "client", l.Name)
	}
}

// Run initializes the producer's transactions, subscribes to the input topics and runs the loop until
// ctx ends, Close is called (then it returns ErrClosed), the transform fails (a *TransformError) or
// an error stops the session (a fatal one wraps aioproducer.ErrFatal). A transaction open when ctx
// ends stays open until Close aborts it. Run may be called once; call Close after it returns.
func (s *Session) Run(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return ErrClosed
	case s.started:
		s.mu.Unlock()
		return errors.New("aioproducer/eos: Run called twice")
	}
	s.started = true
	ctx, cancel := context.WithCancelCause(ctx)
	s.cancelRun = cancel
	s.mu.Unlock()
	defer s.runReturned(cancel)

	err := s.loop(ctx)
	switch {
	case aioproducer.IsFatal(err) || ctx.Err() == nil:
		return err
	case errors.Is(context.Cause(ctx), ErrClosed):
		return ErrClosed
	default:
		return fmt.Errorf("aioproducer/eos: Run: %w", ctx.Err())
	}
}

// runReturned ends Run: it says so to Close, and shuts the session down if Close stopped waiting.
func (s *Session) runReturned(cancel context.CancelCauseFunc) {
	cancel(nil)
	s.mu.Lock()
	s.cancelRun = nil
	close(s.runDone)
	abandoned := s.abandoned
	s.mu.Unlock()
	if abandoned {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.closeErr = s.shutdown(ctx)
		close(s.closed)
	}
}

func (s *Session) loop(ctx context.Context) error {
	if err := s.retry(ctx, "InitTransactions", func() error { return s.p.InitTransactions(ctx) }); err != nil {
		return stopped("InitTransactions", err)
	}
	if err := s.c.SubscribeTopics(s.topics, s.rebalanced); err != nil {
		return fmt.Errorf("aioproducer/eos: subscribing to %s: %w", strings.Join(s.topics, ", "), err)
	}
	for {
		batch, err := s.poll(ctx)
		if err != nil {
			return err
		}
		if err := s.transact(ctx, batch); err != nil {
			return err
		}
	}
}

// poll returns the next batch: up to maxBatch messages, polled until maxWait after the first one. It
// waits for a first message as long as ctx lets it.
func (s *Session) poll(ctx context.Context) ([]*kafka.Message, error) {
	s.batch = make([]*kafka.Message, 0, min(s.cfg.maxBatch, 1024))
	var deadline time.Time
	for len(s.batch) < s.cfg.maxBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ms := 100
		if len(s.batch) == 0 {
			deadline = time.Time{} // nothing yet, or the rebalance callback dropped it all
		} else {
			if deadline.IsZero() {
				deadline = time.Now().Add(s.cfg.maxWait)
			}
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			ms = min(ms, max(1, int(left.Milliseconds())))
		}
		switch ev := s.c.Poll(ms).(type) {
		case *kafka.Message:
			if err := ev.TopicPartition.Error; err != nil {
				s.log.Warn("aioproducer/eos: consumer error", "partition", ev.TopicPartition.String(), "error", err.Error())
				continue
			}
			s.batch = append(s.batch, ev)
		case kafka.Error:
			if ev.IsFatal() {
				return nil, fmt.Errorf("aioproducer/eos: the consumer: %w", ev)
			}
			s.log.Warn("aioproducer/eos: consumer error", "error", ev.Error())
		}
	}
	batch := s.batch
	s.batch = nil
	return batch, nil
}

// rebalanced is the consumer's rebalance callback, called in Poll (and in the consumer's Close).
// confluent-kafka-go assigns and unassigns after it.
func (s *Session) rebalanced(c *kafka.Consumer, ev kafka.Event) error {
	switch ev := ev.(type) {
	case kafka.AssignedPartitions:
		s.log.Info("aioproducer/eos: partitions assigned", "partitions", describe(ev.Partitions))
	case kafka.RevokedPartitions:
		revoked := map[partition]bool{}
		for _, tp := range ev.Partitions {
			revoked[keyOf(tp)] = true
		}
		before := len(s.batch)
		s.batch = slices.DeleteFunc(s.batch, func(m *kafka.Message) bool { return revoked[keyOf(m.TopicPartition)] })
		s.log.Info("aioproducer/eos: partitions revoked", "partitions", describe(ev.Partitions),
			"lost", c.AssignmentLost(), "dropped", before-len(s.batch))
	}
	return nil
}

// Close stops Run (its ctx is cancelled, the transform's included) and waits for it to return, then
// aborts the transaction it left open, closes the consumer (leaving the group, so that its partitions
// go to the other members at once) and closes the producer. ctx bounds the wait. If Run has not
// returned when ctx ends (a transform that ignores its ctx), Close returns an error and Run shuts the
// session down itself when it returns. Close is idempotent: a second call waits for the first (or for
// its own ctx) and returns its result.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		select {
		case <-s.closed:
			return s.closeErr
		case <-ctx.Done():
			return fmt.Errorf("aioproducer/eos: Close: waiting for the first Close: %w", ctx.Err())
		}
	}
	s.closing = true
	started, cancel := s.started, s.cancelRun
	s.mu.Unlock()
	if cancel != nil {
		cancel(ErrClosed)
	}
	if started {
		select {
		case <-s.runDone:
		case <-ctx.Done():
			s.mu.Lock()
			select {
			case <-s.runDone: // returned meanwhile
				s.mu.Unlock()
			default:
				s.abandoned = true
				s.mu.Unlock()
				return fmt.Errorf("aioproducer/eos: Close: Run has not returned (does the transform ignore its ctx?); "+
					"the session shuts down when it does: %w", ctx.Err())
			}
		}
	}
	s.closeErr = s.shutdown(ctx)
	close(s.closed)
	return s.closeErr
}

// shutdown aborts the open transaction, if any, and closes the consumer and the producer.
func (s *Session) shutdown(ctx context.Context) error {
	var errs []error
	if s.inTxn {
		if err := s.p.AbortTransaction(ctx); err != nil && !aioproducer.IsFatal(err) {
			errs = append(errs, fmt.Errorf("aioproducer/eos: Close: aborting the open transaction: %w", err))
		} else if err == nil {
			s.inTxn = false
			s.log.Info("aioproducer/eos: Close aborted the open transaction")
		}
	}
	if err := s.c.Close(); err != nil {
		errs = append(errs, fmt.Errorf("aioproducer/eos: Close: the consumer: %w", err))
	}
	<-s.logsDone
	if err := s.p.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("aioproducer/eos: Close: the producer: %w", err))
	}
	return errors.Join(errs...)
}
