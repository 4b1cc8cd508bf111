package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The service runs on the mock cluster, serves /metrics with the producer's counters and the
// statistics gauges, and stops cleanly when its context ends.
func TestServiceServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{addr: "127.0.0.1:0", topic: "events", rate: 200, statsEvery: 100 * time.Millisecond},
			slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/metrics"
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	}

	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `aioproducer_messages_delivered_total{topic="events"}`) &&
			strings.Contains(body, "aioproducer_broker_up{")
	}, 20*time.Second, 100*time.Millisecond, "metrics never showed deliveries and broker state:\n%s", body)
	assert.Contains(t, body, "aioproducer_held_messages ")
	assert.Contains(t, body, "go_goroutines ")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
