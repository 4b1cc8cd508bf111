package main

// The child side of the stuck cell (-child NAME -scale-spec JSON with kind "stuck"): one client produces
// unkeyed messages at a fixed offered rate to one topic until the harness writes STOP on its stdin (or
// closes it), then flushes and closes, and writes every Produce call's start and end and every
// delivery's time, partition and outcome to the file the spec names (stuckLog). The harness pauses and
// resumes the broker meanwhile and works out the rates from the file: the child knows nothing of the
// pause. All times are the wall clock in Unix nanoseconds, which both processes read.
//
//	stdout: "READY <t0>" once the first message is delivered and the offered load starts at t0;
//	        "RESULT <flush ns> <mallocs>" and "STAT name value" lines at the end.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/seed-f937cf20/aioproducer"
)

// stuckCall is one Produce call: when it began and when it returned with the message accepted (raw:
// after every ErrQueueFull retry). Unix nanoseconds.
type stuckCall struct{ Start, End int64 }

// stuckDelivery is one delivery report: when the client saw it, the partition (-1 if unknown), and 1 if
// the message failed.
type stuckDelivery struct {
	T         int64
	Partition int32
	Failed    int32
}

// stuckLog is what one child run records; calls is written by the producing goroutine only, deliveries
// by whichever goroutine the client reports on.
type stuckLog struct {
	calls []stuckCall

	mu         sync.Mutex
	deliveries []stuckDelivery
	n          atomic.Int64 // len(deliveries)
}

func (l *stuckLog) delivered(partition int32, failed bool) {
	d := stuckDelivery{T: time.Now().UnixNano(), Partition: partition}
	if failed {
		d.Failed = 1
	}
	l.mu.Lock()
	l.deliveries = append(l.deliveries, d)
	l.n.Store(int64(len(l.deliveries)))
	l.mu.Unlock()
}

// waitDeliveries waits until n reports have come, or d has passed.
func (l *stuckLog) waitDeliveries(n int64, d time.Duration) error {
	end := time.Now().Add(d)
	for l.n.Load() < n {
		if time.Now().After(end) {
			return fmt.Errorf("%d of %d delivery reports after %v", l.n.Load(), n, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// reset forgets the deliveries so far (the first message's).
func (l *stuckLog) reset() {
	l.mu.Lock()
	l.deliveries = l.deliveries[:0]
	l.n.Store(0)
	l.mu.Unlock()
}

// write saves the log: two counts, then the calls, then the deliveries, little-endian.
func (l *stuckLog) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range []any{int64(len(l.calls)), int64(len(l.deliveries)), l.calls, l.deliveries} {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readStuckLog reads what write saved.
func readStuckLog(path string) (calls []stuckCall, deliveries []stuckDelivery, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var nc, nd int64
	if err := binary.Read(r, binary.LittleEndian, &nc); err != nil {
		return nil, nil, err
	}
	if err := binary.Read(r, binary.LittleEndian, &nd); err != nil {
		return nil, nil, err
	}
	if nc < 0 || nd < 0 || nc > 1<<30 || nd > 1<<30 {
		return nil, nil, fmt.Errorf("%s: bad counts %d, %d", path, nc, nd)
	}
	calls, deliveries = make([]stuckCall, nc), make([]stuckDelivery, nd)
	if err := binary.Read(r, binary.LittleEndian, calls); err != nil {
		return nil, nil, err
	}
	if err := binary.Read(r, binary.LittleEndian, deliveries); err != nil {
		return nil, nil, err
	}
	return calls, deliveries, nil
}

// stuckClient is one client of the stuck cell: produce sends one unkeyed message and returns once the
// client accepted it (the client reports its outcome to the log); flush waits for every outcome.
type stuckClient struct {
	produce func() error
	flush   func(context.Context) error
	close   func()
}

func stuckChild(name, bootstrap string, s scaleSpec) int {
	if s.Rate <= 0 || s.Out == "" {
		fmt.Fprintln(os.Stderr, "stuck: the spec needs rate and out")
		return 2
	}
	l := &stuckLog{}
	capHint := int(float64(s.Rate) * (s.For + time.Minute).Seconds())
	l.calls = make([]stuckCall, 0, capHint)
	l.deliveries = make([]stuckDelivery, 0, capHint)
	t := s.topicName(0)
	val := payload(s.Size)
	var c stuckClient
	var err error
	switch name {
	case scRaw:
		c, err = rawStuckClient(bootstrap, t, val, l)
	case scAioFunc:
		c, err = aioStuckClient(bootstrap, t, val, l)
	case scFranz:
		c, err = franzStuckClient(bootstrap, t, val, l)
	default:
		err = fmt.Errorf("no stuck client %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The first message: metadata, connections and the producer ID, before the offered load starts.
	if err := c.produce(); err != nil {
		fmt.Fprintln(os.Stderr, "first message:", err)
		return 1
	}
	if err := l.waitDeliveries(1, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, "first message:", err)
		return 1
	}
	if l.deliveries[0].Failed != 0 {
		fmt.Fprintln(os.Stderr, "first message failed")
		return 1
	}
	l.reset()

	var stop atomic.Bool
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "STOP" {
				break
			}
		}
		stop.Store(true) // STOP, or the harness went away
	}()
	m0 := mallocs()
	t0 := time.Now()
	fmt.Printf("READY %d\n", t0.UnixNano())
	var refused int
	var firstErr error
	// The offered load: message i is due at t0 + i/rate; every millisecond, everything due is produced,
	// so a Produce that blocked is followed by the messages that fell due meanwhile (an open loop).
	for i := 0; !stop.Load(); {
		due := int(time.Since(t0).Nanoseconds()*int64(s.Rate)/int64(time.Second)) + 1
		for ; i < due && !stop.Load(); i++ {
			st := time.Now().UnixNano()
			if err := c.produce(); err != nil {
				refused++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			l.calls = append(l.calls, stuckCall{Start: st, End: time.Now().UnixNano()})
		}
		time.Sleep(time.Millisecond)
	}
	stopAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "flush:", err)
	}
	if err := l.waitDeliveries(int64(len(l.calls)), time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	flushed := time.Since(stopAt)
	c.close()
	if err := l.write(s.Out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "%d Produce calls refused, the first: %v\n", refused, firstErr)
	}
	fmt.Printf("RESULT %d %d\n", flushed.Nanoseconds(), mallocs()-m0)
	fmt.Printf("STAT refused %d\n", refused)
	fmt.Printf("STAT stop %d\n", stopAt.UnixNano())
	if hwm := peakRSSBytes(); hwm > 0 {
		fmt.Printf("STAT hwm %d\n", hwm)
	}
	return 0
}

// rawStuckClient: kafka.Producer, its Events channel, ErrQueueFull retried every 100 µs.
func rawStuckClient(bootstrap, t string, val []byte, l *stuckLog) (stuckClient, error) {
	cm := configMap(bootstrap, "none")
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return stuckClient{}, err
	}
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case ev := <-kp.Events():
				if m, ok := ev.(*kafka.Message); ok {
					l.delivered(m.TopicPartition.Partition, m.TopicPartition.Error != nil)
				}
			case <-quit:
				return
			}
		}
	}()
	return stuckClient{
		produce: func() error {
			for {
				err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: kafka.PartitionAny}, Value: val}, nil)
				if err == nil {
					return nil
				}
				if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
					return err
				}
				time.Sleep(100 * time.Microsecond)
			}
		},
		flush: func(ctx context.Context) error {
			for kp.Flush(100) > 0 {
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			return nil
		},
		close: func() { close(quit); kp.Close() },
	}, nil
}

// aioStuckClient: aioproducer.New with no option; ProduceFunc with one callback for every message (it
// gets the partition; a Future waited in produce order would time a delivery no earlier than the
// ones before it).
func aioStuckClient(bootstrap, t string, val []byte, l *stuckLog) (stuckClient, error) {
	p, err := aioproducer.New(configMap(bootstrap, "none"))
	if err != nil {
		return stuckClient{}, err
	}
	ctx := context.Background()
	cb := func(d aioproducer.Delivery, err error) {
		if err != nil {
			l.delivered(-1, true)
			return
		}
		l.delivered(d.Partition, false)
	}
	return stuckClient{
		produce: func() error { return p.ProduceFunc(ctx, &aioproducer.Message{Topic: t, Value: val}, cb) },
		flush:   p.Flush,
		close:   func() { _ = p.Close(ctx) },
	}, nil
}

// franzStuckClient: kgo with bench's options (acks=all, idempotent by default, linger 5 ms); Produce
// blocks while MaxBufferedRecords (10,000) are buffered.
func franzStuckClient(bootstrap, t string, val []byte, l *stuckLog) (stuckClient, error) {
	topic = t
	cl, err := kgo.NewClient(franzOpts(bootstrap, "none")...)
	if err != nil {
		return stuckClient{}, err
	}
	ctx := context.Background()
	promise := func(r *kgo.Record, err error) {
		l.delivered(r.Partition, err != nil)
	}
	return stuckClient{
		produce: func() error {
			cl.Produce(ctx, &kgo.Record{Topic: t, Value: val}, promise)
			return nil
		},
		flush: cl.Flush,
		close: cl.Close,
	}, nil
}
