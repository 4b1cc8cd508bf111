package aioproducer

import (
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// pidKick spares an idempotent producer's first messages a needless wait of 500ms (sometimes 1s) for
// its producer ID, on librdkafka 2.10 and later.
//
// librdkafka asks for the ID (InitProducerId) only from a broker whose connection is up. When none is,
// it tries again on a 500ms timer, and each time a Metadata response arrives, but not when a connection
// comes up (rdkafka_idempotence.c, rd_kafka_idemp_pid_fsm; rdkafka_metadata.c, the end of
// rd_kafka_parse_Metadata0). Since 2.10 it closes the bootstrap connection as soon as the first
// Metadata response names the cluster's brokers, so the try that response makes finds no broker up.
// The connection to one of the named brokers, once up, asks for metadata only about the known topics
// whose cached metadata is not fresh (rd_kafka_broker_connect_up). So when the first message's topic
// got its metadata over the bootstrap connection, as it does when Produce comes before that
// connection is up (the usual case at startup: one network round trip is enough), no Metadata
// response follows, and the ID, and with it every message, waits for the timer.
//
// pidKick asks for metadata until one of the named brokers answers: librdkafka then asks that broker
// for the ID at once. It sends only Metadata requests, as librdkafka does on its own, and does not
// touch the messages, the ID or the sequence numbers, so idempotence and order stay as they were.
type pidKick struct {
	stop chan struct{}
	done chan struct{}
}

const (
	// pidKickWait bounds each metadata request's wait for a broker and its answer, and so how long close
	// waits for the kick; it doubles, up to pidKickMaxWait, after each answer that came too late.
	pidKickWait    = 100 * time.Millisecond
	pidKickMaxWait = 2 * time.Second
)

// needsPIDKick reports whether cm (as kafkaConfig returns it) makes an idempotent producer that is not
// transactional: a transactional producer asks its coordinator for the ID, which librdkafka watches.
func needsPIDKick(cm kafka.ConfigMap) bool {
	if id, ok := cm["transactional.id"]; ok && id != nil {
		if s, _ := settingValue(id); s != "" {
			return false
		}
	}
	return isTrue(cm["enable.idempotence"])
}

// startPIDKick starts kicking the producer ID request of p, which must stay open until close returns.
func startPIDKick(p *rdk.Producer) *pidKick {
	k := &pidKick{stop: make(chan struct{}), done: make(chan struct{})}
	go k.run(func(wait time.Duration) (int32, kafka.ErrorCode) { return p.MetadataOrigin(int(wait.Milliseconds())) })
	return k
}

// run calls metadata, which asks for metadata, waiting up to wait, and returns the node id of the broker
// that answered (-1 for a bootstrap broker), until a broker the cluster named answers or close.
func (k *pidKick) run(metadata func(wait time.Duration) (origin int32, err kafka.ErrorCode)) {
	defer close(k.done)
	wait := pidKickWait
	for bootstrapAnswers := 0; ; {
		select {
		case <-k.stop:
			return
		default:
		}
		began := time.Now()
		origin, err := metadata(wait)
		switch {
		case err == kafka.ErrNoError && origin >= 0:
			return // librdkafka, handling the answer, asked that broker for the ID
		case err == kafka.ErrNoError:
			if bootstrapAnswers++; bootstrapAnswers == 1 {
				continue // librdkafka knows the cluster's brokers now: ask one of them, once it is up
			}
		case err == kafka.ErrTimedOut:
			// The request went out but its answer is late, a slow network: wait longer next time
			// rather than pile up requests.
			wait = min(2*wait, pidKickMaxWait)
			continue
		}
		// No broker was up within wait (kafka.ErrTransport), or another error: try again, at most
		// every pidKickWait.
		if d := pidKickWait - time.Since(began); d > 0 {
			select {
			case <-k.stop:
				return
			case <-time.After(d):
			}
		}
	}
}

// close stops the kick and waits for it: for at most its current wait, pidKickWait unless requests
// went unanswered for that long. k may be nil.
func (k *pidKick) close() {
	if k == nil {
		return
	}
	close(k.stop)
	<-k.done
}
