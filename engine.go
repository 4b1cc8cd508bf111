package aioproducer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// reportBurst is the most delivery reports the engine hands to the sink at once.
const reportBurst = 512

// kafkaEngine is the engine over confluent-kafka-go's kafka.Producer: one Produce call per message, and
// one goroutine that drains the Events and Logs channels.
type kafkaEngine struct {
	kp     *kafka.Producer
	tokens *tokenRefresher
	rk     rdk.Handle // kp's librdkafka handle, for rd_kafka_flush
	sink   reportSink
	log    *slog.Logger
	stats  bool // hand librdkafka's statistics reports to the sink
	done   chan struct{}
}

// newKafkaEngine creates the librdkafka producer for cm, whose reports go to sink once started (with
// stats, its statistics reports too: kafka.Producer always asks librdkafka for them, which emits them
// when statistics.interval.ms is set). It starts nothing of its own when it returns an error.
func newKafkaEngine(cm kafka.ConfigMap, sink reportSink, log *slog.Logger, tokens TokenProvider, stats bool) (*kafkaEngine, error) {
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, err
	}
	// kafka.Producer.Flush would flush too, but it polls the events itself and leaves a goroutine
	// calling rd_kafka_flush behind when it returns; the engine calls rd_kafka_flush on kp's handle
	// directly, and only before kp.Close.
	rk, err := rdk.HandleOf(kp)
	if err != nil {
		kp.Close()
		return nil, err
	}
	e := &kafkaEngine{kp: kp, rk: rk, sink: sink, log: log, stats: stats, done: make(chan struct{})}
	e.tokens = newTokenRefresher(tokens, log, kp.SetOAuthBearerToken, kp.SetOAuthBearerTokenFailure)
	return e, nil
}

func (e *kafkaEngine) flush(timeoutMs int) bool { return e.rk.Flush(timeoutMs) }

func (e *kafkaEngine) txn(op, timeoutMs int) error {
	var err error
	switch op {
	case rdk.TxnBegin:
		err = e.kp.BeginTransaction()
	default:
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
		defer cancel()
		switch op {
		case rdk.TxnInit:
			err = e.kp.InitTransactions(ctx)
		case rdk.TxnCommit:
			err = e.kp.CommitTransaction(ctx)
		case rdk.TxnAbort:
			err = e.kp.AbortTransaction(ctx)
		}
	}
	return kafkaTxnError(err)
}

func (e *kafkaEngine) sendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, timeoutMs int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	return kafkaTxnError(e.kp.SendOffsetsToTransaction(ctx, offsets, cgm))
}

// kafkaTxnError is confluent-kafka-go's transactional error as a *TxnError, or nil.
func kafkaTxnError(err error) error {
	if err == nil {
		return nil
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return &TxnError{Err: err}
	}
	return &TxnError{Err: ke, retriable: ke.IsRetriable(), requiresAbort: ke.TxnRequiresAbort(), fatal: ke.IsFatal()}
}

func (e *kafkaEngine) start() { go e.run() }

func (e *kafkaEngine) enqueue(recs []*record) (int, error) {
	km := new(kafka.Message)
	for i, r := range recs {
		part, _ := r.msg.Partition.ID()
		*km = kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &r.msg.Topic, Partition: part},
			Key:            r.msg.Key,
			Value:          r.msg.Value,
			Headers:        r.msg.Headers,
			Timestamp:      r.ts,
			Opaque:         r,
		}
		if err := e.kp.Produce(km, nil); err != nil {
			var ke kafka.Error
			if errors.As(err, &ke) && ke.Code() == kafka.ErrQueueFull {
				return i, errQueueFull
			}
			return i, err
		}
	}
	return len(recs), nil
}

func (e *kafkaEngine) purgeQueue() error {
	return e.kp.Purge(kafka.PurgeQueue | kafka.PurgeNonBlocking)
}

func (e *kafkaEngine) purge() error {
	return e.kp.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
}

func (e *kafkaEngine) fatalError() (kafka.Error, bool) {
	var ke kafka.Error
	ok := errors.As(e.kp.GetFatalError(), &ke)
	return ke, ok
}

func (e *kafkaEngine) close() {
	e.tokens.close()
	e.kp.Close()
	<-e.done
}

func (e *kafkaEngine) setSaslCredentials(username, password string) error {
	return e.kp.SetSaslCredentials(username, password)
}

// run drains delivery reports, errors and log lines until kafka.Producer.Close closes the channels.
func (e *kafkaEngine) run() {
	defer close(e.done)
	events, logs := e.kp.Events(), e.kp.Logs()
	buf := make([]report, 0, reportBurst)
	for events != nil || logs != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			buf = e.handle(ev, buf)
		burst:
			for len(buf) < reportBurst {
				select {
				case ev, ok := <-events:
					if !ok {
						events = nil
						break burst
					}
					buf = e.handle(ev, buf)
				default:
					break burst
				}
			}
			if len(buf) > 0 {
				e.sink.onReports(buf)
				clear(buf)
				buf = buf[:0]
			}
		case l, ok := <-logs:
			if !ok {
				logs = nil
				continue
			}
			e.log.Log(context.Background(), syslogLevel(l.Level), "librdkafka: "+l.Message,
				"tag", l.Tag, "client", l.Name)
		}
	}
}

func (e *kafkaEngine) handle(ev kafka.Event, buf []report) []report {
	switch ev := ev.(type) {
	case *kafka.Message:
		rec, ok := ev.Opaque.(*record)
		if !ok {
			e.log.Error("aioproducer: delivery report without a record", "topic", ev.TopicPartition.Topic)
			return buf
		}
		return append(buf, report{
			rec:       rec,
			partition: ev.TopicPartition.Partition,
			offset:    int64(ev.TopicPartition.Offset),
			err:       ev.TopicPartition.Error,
		})
	case kafka.OAuthBearerTokenRefresh:
		e.tokens.request(ev.Config)
	case *kafka.Stats:
		if e.stats {
			e.sink.onStats([]byte(ev.String()))
		}
	case kafka.Error:
		if ev.IsFatal() {
			// Reports already drained go first: they happened before.
			if len(buf) > 0 {
				e.sink.onReports(buf)
				clear(buf)
				buf = buf[:0]
			}
			e.sink.onFatal(ev)
			return buf
		}
		// librdkafka logs these itself (they reach the logger as its log lines); this one is for
		// debugging the producer.
		e.log.Debug("aioproducer: librdkafka error event", "code", ev.Code().String(), "error", ev.Error())
		e.sink.onError(ev)
	}
	return buf
}

// syslogLevel maps a librdkafka (syslog) log level to a slog level.
func syslogLevel(l int) slog.Level {
	switch {
	case l <= 3:
		return slog.LevelError
	case l == 4:
		return slog.LevelWarn
	case l <= 6:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
