package aioproducer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
)

// TestFirstMessageIsNotDelayed produces messages one at a time, each awaited, right after New, on a
// fresh mock cluster per run, with the default (idempotent) settings: on localhost, and with a 10ms
// round trip, as on a network (the first Produce then always comes before the bootstrap connection is
// up). librdkafka 2.10+ used to hold the first message about 500ms, until its producer ID timer fired
// (see pidKick); later ones take a few ms, or a round trip and a half. The median first latency of the
// runs must stay under 250ms plus twice the later messages' median, which a loaded machine raises for
// both. It takes about 3s (about 8s when it fails).
func TestFirstMessageIsNotDelayed(t *testing.T) {
	const runs, later = 3, 3
	for _, rtt := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprintf("rtt=%v", rtt), func(t *testing.T) {
			var firsts, rest []time.Duration
			for range runs {
				first, lat := firstMessageLatencies(t, rtt, later)
				firsts = append(firsts, first)
				rest = append(rest, lat...)
			}
			firstMed, restMed := medianDuration(firsts), medianDuration(rest)
			t.Logf("first message: median %v of %v; later messages: median %v", firstMed, firsts, restMed)
			limit := 250*time.Millisecond + 2*restMed
			require.LessOrEqual(t, firstMed, limit, "first message's median latency (later ones: %v)", restMed)
		})
	}
}

// firstMessageLatencies starts a mock cluster whose broker answers after rtt and a producer on it, then
// produces 1+later messages, 20ms apart, waiting for each: it returns the first one's latency and the
// others'.
func firstMessageLatencies(t *testing.T, rtt time.Duration, later int) (time.Duration, []time.Duration) {
	t.Helper()
	mc, err := kafka.NewMockCluster(1)
	require.NoError(t, err)
	defer mc.Close()
	if rtt > 0 {
		require.NoError(t, mc.SetRoundtripDuration(1, rtt))
	}
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()}, WithLogger(quietLogger))
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, p.Close(ctx))
	}()
	ctx := ctxTimeout(t, 30*time.Second)
	lat := make([]time.Duration, 0, 1+later)
	for i := 0; i <= later; i++ {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		f, err := p.Produce(ctx, &Message{Topic: "first-message", Value: []byte("v")})
		require.NoError(t, err)
		_, err = f.Wait(ctx)
		require.NoError(t, err)
		lat = append(lat, time.Since(start))
	}
	return lat[0], lat[1:]
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
