package aioprom_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
	"github.com/seed-f937cf20/aioproducer/aioprom"
)

func Example() {
	cluster, _ := aioproducertest.StartCluster(aioproducertest.WithTopic("orders", 1)) // in-process mock Kafka
	defer cluster.Close()

	metrics := aioprom.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	p, err := aioproducer.New(kafka.ConfigMap{
		"bootstrap.servers":      cluster.Bootstrap(),
		"statistics.interval.ms": 5000, // the broker and partition gauges
	}, aioproducer.WithHooks(metrics), aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	metrics.WatchStats(p)                                       // the buffer gauges
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // http.Handle("/metrics", handler)
	_ = handler

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		_, _ = p.Produce(ctx, &aioproducer.Message{Topic: "orders", Value: fmt.Appendf(nil, "order %d", i)})
	}
	_ = p.Flush(ctx)
	_ = p.Close(ctx)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "aioproducer_messages_delivered_total" {
			for _, m := range mf.GetMetric() {
				fmt.Println(mf.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	// Output: aioproducer_messages_delivered_total orders 3
}
