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
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// A service that produces from its HTTP handlers shuts down under one deadline: first the server
// stops taking requests and waits for the handlers in flight, then Close sends what they produced and
// waits for every outcome.
func Example_shutdown() {
	bootstrap, stop := exampleCluster("orders")
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		// r.Context() bounds only the wait for buffer room: once Produce returns, the message is
		// accepted, and the request's end does not recall it.
		_, err := p.Produce(r.Context(), &aioproducer.Message{Topic: "orders", Value: []byte(r.URL.Query().Get("id"))})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable) // ErrClosed once Close has begun
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
	if err := srv.Shutdown(ctx); err != nil { // no new requests; waits for the handlers in flight
		log.Print(err)
	}
	if err := p.Close(ctx); err != nil { // then sends what they produced and waits for every outcome
		log.Print(err) // ctx ended first: what was not delivered has failed
	}
	fmt.Println(<-served)
	fmt.Println("delivered:", p.Stats().Delivered)
	// Output:
	// order 1 202 Accepted
	// order 2 202 Accepted
	// order 3 202 Accepted
	// http: Server closed
	// delivered: 3
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
