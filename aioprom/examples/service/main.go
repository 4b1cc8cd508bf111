// Command service is a small producer service that exposes its metrics to Prometheus: it produces
// messages at a steady rate with aioproducer, with an aioprom.Metrics hook, and serves /metrics.
//
//	go run ./examples/service                                   # an in-process mock cluster
//	KAFKA_BOOTSTRAP=localhost:9092 go run ./examples/service    # a real cluster
//	curl -s localhost:2112/metrics | grep ^aioproducer_
//
// Flags: -addr (default 127.0.0.1:2112), -topic (default "events"; on a real cluster it must exist),
// -rate (messages per second, default 10), -duration (0: until Ctrl-C), -stats-interval (librdkafka's
// statistics.interval.ms, default 5s).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
	"github.com/seed-f937cf20/aioproducer/aioprom"
)

const closeTimeout = 5 * time.Second

type config struct {
	addr, topic, bootstrap string
	rate                   float64
	duration, statsEvery   time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:2112", "address to serve /metrics on")
	flag.StringVar(&c.topic, "topic", "events", "topic to produce to")
	flag.Float64Var(&c.rate, "rate", 10, "messages per second")
	flag.DurationVar(&c.duration, "duration", 0, "how long to run (0: until Ctrl-C)")
	flag.DurationVar(&c.statsEvery, "stats-interval", 5*time.Second, "librdkafka's statistics.interval.ms")
	flag.Parse()
	c.bootstrap = os.Getenv("KAFKA_BOOTSTRAP")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, c, log, func(addr string) { log.Info("serving metrics", "url", "http://"+addr+"/metrics") }); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// run produces to c.topic and serves /metrics until ctx ends, then closes the producer and the
// server. ready is called with the server's address once it listens.
func run(ctx context.Context, c config, log *slog.Logger, ready func(addr string)) (err error) {
	if c.bootstrap == "" {
		// The mock cluster's own librdkafka client logs a harmless CONFWARN about bootstrap.servers.
		cluster, err := aioproducertest.StartCluster(aioproducertest.WithTopic(c.topic, 3))
		if err != nil {
			return err
		}
		defer cluster.Close()
		c.bootstrap = cluster.Bootstrap()
		log.Info("KAFKA_BOOTSTRAP is not set: in-process mock cluster", "bootstrap", c.bootstrap, "topic", c.topic)
	}

	metrics := aioprom.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers":      c.bootstrap,
		"client.id":              "aioproducer-service",
		"statistics.interval.ms": int(c.statsEvery.Milliseconds()),
	}, aioproducer.WithHooks(metrics), aioproducer.WithLogger(log))
	if err != nil {
		return err
	}
	metrics.WatchStats(p)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if cerr := p.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("http shutdown: %w", serr))
		}
		<-served
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}

	return produce(ctx, p, c, log)
}

// produce sends a message every 1/c.rate seconds until ctx ends; outcomes are counted by the hook, and
// failures logged.
func produce(ctx context.Context, p *aioproducer.Producer, c config, log *slog.Logger) error {
	every := time.Second
	if c.rate > 0 {
		every = time.Duration(float64(time.Second) / c.rate)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		msg := &aioproducer.Message{Topic: c.topic, Key: fmt.Appendf(nil, "key-%d", i%16), Value: fmt.Appendf(nil, "event %d", i)}
		err := p.ProduceFunc(ctx, msg, func(_ aioproducer.Delivery, err error) {
			if err != nil {
				log.Warn("delivery failed", "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
}
