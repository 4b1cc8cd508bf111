package aioproducer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// orderHandler produces an order and answers once Kafka has it. r.Context() bounds the request's waits;
// a message Produce accepted is not recalled when the request ends.
func orderHandler(p aioproducer.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fut, err := p.Produce(r.Context(), &aioproducer.Message{Topic: "orders", Value: []byte(r.URL.Query().Get("id"))})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable) // ErrClosed once Close has begun
			return
		}
		if _, err := fut.Wait(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable) // not delivered, or the client left
			return
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// shutdownService stops srv, then closes p, under ctx's one deadline. srv.Shutdown gets at most half
// of what is left: with the brokers down, handlers waiting for their Futures would hold it to the
// deadline, and Close would start with no time left. Close gets the rest: it sends what the handlers
// produced, and once its ctx ends fails what it could not send, so every Future resolves and the
// handlers still in flight answer (their connections close after that, the server being shut down).
func shutdownService(ctx context.Context, srv *http.Server, p aioproducer.Client) error {
	sctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
		defer cancel()
	}
	serr := srv.Shutdown(sctx) // no new requests; waits for the handlers in flight, half the time at most
	cerr := p.Close(ctx)       // every outcome, or ctx's error once what was not sent has failed
	return errors.Join(serr, cerr)
}

// A service that produces from its HTTP handlers shuts down under one deadline: first the server
// stops taking requests and waits for the handlers in flight, then Close sends what they produced and
// waits for every outcome (shutdownService).
func Example_shutdown() {
	bootstrap, stop := exampleCluster("orders")
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: orderHandler(p), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	for _, id := range []string{"1", "2", "3"} {
		resp, err := http.Post("http://"+ln.Addr().String()+"/orders?id="+id, "", nil)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println("order", id, resp.Status)
	}

	// On SIGTERM: one deadline for the whole shutdown, shorter than the orchestrator's grace period.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdownService(ctx, srv, p); err != nil {
		log.Print(err) // a deadline passed: what was not delivered has failed
	}
	fmt.Println(<-served)
	fmt.Println("delivered:", p.Stats().Delivered)
	// Output:
	// order 1 201 Created
	// order 2 201 Created
	// order 3 201 Created
	// http: Server closed
	// delivered: 3
}

// closeSpy is a Client that notes the ctx its Close got and what Close returned.
type closeSpy struct {
	*aioproducer.Producer
	left   time.Duration // until Close's deadline, when it was called
	ctxErr error         // Close's ctx's error, when it was called
	err    error         // Close's result
	took   time.Duration
}

func (s *closeSpy) Close(ctx context.Context) error {
	dl, _ := ctx.Deadline()
	s.left, s.ctxErr = time.Until(dl), ctx.Err()
	start := time.Now()
	s.err = s.Producer.Close(ctx)
	s.took = time.Since(start)
	return s.err
}

// With the broker down, handlers wait for Futures that no broker answers: shutdownService's Shutdown
// gives up at half the deadline, and Close still gets the other half, fails what it could not send
// when its own deadline passes, and every handler answers. The whole shutdown ends at the deadline.
func TestShutdownServiceLeavesCloseTimeWhileTheBrokerIsDown(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("orders", 1))
	p, err := aioproducer.New(c.Config(), aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) }) // if the test fails before its shutdown
	spy := &closeSpy{Producer: p}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: orderHandler(spy), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	post := func(id string) (int, error) {
		resp, err := client.Post("http://"+ln.Addr().String()+"/orders?id="+id, "", nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	code, err := post("up")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, "with the broker up")

	require.NoError(t, c.SetBrokerDown(1))
	const n = 5
	codes := make(chan int, n)
	for i := range n {
		go func() {
			code, err := post(fmt.Sprint(i))
			if err != nil {
				t.Errorf("order %d: %v", i, err)
			}
			codes <- code
		}()
	}
	require.Eventually(t, func() bool { return p.Stats().HeldMessages == n }, 10*time.Second, time.Millisecond,
		"the handlers wait for their Futures")

	const budget = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err = shutdownService(ctx, srv, spy)
	took := time.Since(start)
	t.Logf("shutdown took %v; Close got %v and took %v", took, spy.left, spy.took)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)

	require.NoError(t, spy.ctxErr, "Close got a live ctx")
	assert.Greater(t, spy.left, budget/2-200*time.Millisecond, "Close got about half the deadline")
	assert.Greater(t, spy.took, budget/2-300*time.Millisecond, "Close ran until its deadline")
	if spy.err != nil {
		assert.ErrorIs(t, spy.err, context.DeadlineExceeded, "Close's own deadline")
	}
	assert.Less(t, took, budget+500*time.Millisecond, "the whole shutdown within the deadline")
	for range n {
		select {
		case code := <-codes:
			assert.Equal(t, http.StatusServiceUnavailable, code, "the handler's Future failed")
		case <-time.After(10 * time.Second):
			t.Fatal("a handler did not answer after Close")
		}
	}
	st := p.Stats()
	assert.EqualValues(t, 1, st.Delivered)
	assert.EqualValues(t, n, st.Failed, "every Future resolved")
}

// Close with every broker down waits until its context ends (or until librdkafka times the messages
// out, message.timeout.ms), then fails what was never sent and returns the context's error: the outcome
// of every message is known when it returns.
func ExampleProducer_Close_brokersDown() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("events", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.SetBrokerDown(1); err != nil { // the cluster's only broker
		log.Fatal(err)
	}
	// The producer logs a warning naming the brokers' last error while Close waits for them; this
	// example discards it.
	p, err := aioproducer.New(c.Config(), aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	f, err := p.Produce(context.Background(), &aioproducer.Message{Topic: "events", Value: []byte("e-1")})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = p.Close(ctx)
	fmt.Println("close gave up at its deadline:", errors.Is(err, context.DeadlineExceeded))

	_, err = f.Wait(context.Background()) // known already: Close handed it over
	fmt.Println("not sent, safe to produce again:", errors.Is(err, aioproducer.ErrClosed))
	fmt.Println("may be in the log:", aioproducer.IsOutcomeUnknown(err))
	// Output:
	// close gave up at its deadline: true
	// not sent, safe to produce again: true
	// may be in the log: false
}

// The options bound what the producer holds and how it hands messages to librdkafka; the ConfigMap
// holds librdkafka's own settings.
func Example_tuning() {
	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers":  "localhost:9092",
		"linger.ms":          5,       // librdkafka's wait to fill a request (its default)
		"compression.type":   "lz4",   // per request batch; none by default
		"message.timeout.ms": 120_000, // a message's time to delivery, retries included (default 300000)
	},
		aioproducer.WithMaxBuffered(200_000, 128<<20), // held from Produce to outcome; Produce waits beyond
		aioproducer.WithBatchSize(1000),               // the most messages per call into librdkafka (default)
		aioproducer.WithWorkers(2),                    // goroutines handing jobs to librdkafka; a topic uses one
	)
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)
	fmt.Println("started")
	// Output: started
}

// Purge drops what the producer has not sent, without closing it: here the broker is down, so
// nothing has been sent, and every message fails with ErrPurged at once. The producer stays open.
func ExampleProducer_Purge() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("tenant-42", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.SetBrokerDown(1); err != nil {
		log.Fatal(err)
	}
	p, err := aioproducer.New(c.Config(), aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	var futs []*aioproducer.Future
	for _, v := range []string{"a", "b", "c"} {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: "tenant-42", Value: []byte(v)})
		if err != nil {
			log.Fatal(err)
		}
		futs = append(futs, f)
	}

	// The tenant was deleted: its backlog is not worth sending.
	if err := p.Purge(ctx); err != nil {
		log.Fatal(err)
	}
	for _, f := range futs {
		_, err := f.Wait(ctx) // resolved already: Purge returns once every purged message has its outcome
		fmt.Println("purged:", errors.Is(err, aioproducer.ErrPurged), "may be in the log:", aioproducer.IsOutcomeUnknown(err))
	}
	fmt.Println("still open:", !errors.Is(p.Health(), aioproducer.ErrClosed))
	// Output:
	// purged: true may be in the log: false
	// purged: true may be in the log: false
	// purged: true may be in the log: false
	// still open: true
}

// Health answers a readiness probe: nil while the producer can deliver, else why not. It reads a few
// atomics, so the probe may call it as often as it likes.
func ExampleProducer_Health() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("events", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	p, err := aioproducer.New(c.Config(kafka.ConfigMap{"reconnect.backoff.max.ms": 200}),
		aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Health(); err != nil {
			// ErrBrokersDown says since when and the last connection error.
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})

	probe := func() int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	waitFor := func(code int) int {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && probe() != code; {
			time.Sleep(10 * time.Millisecond)
		}
		return probe()
	}
	f, _ := p.Produce(context.Background(), &aioproducer.Message{Topic: "events", Value: []byte("e-1")})
	if _, err := f.Wait(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("broker up:", probe())
	if err := c.SetBrokerDown(1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("broker down:", waitFor(http.StatusServiceUnavailable), errors.Is(p.Health(), aioproducer.ErrBrokersDown))
	if err := c.SetBrokerUp(1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("broker back:", waitFor(http.StatusOK))
	// Output:
	// broker up: 200
	// broker down: 503 true
	// broker back: 200
}
