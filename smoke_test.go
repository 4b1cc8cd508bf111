package aioproducer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("t", 3, 1))
	p := newTestProducer(t, mc.BootstrapServers(), nil)
	ctx := ctxTimeout(t, 20*time.Second)
	var futs []*Future
	for i := 0; i < 1000; i++ {
		f, err := p.Produce(ctx, &Message{Topic: "t", Key: []byte{byte(i % 7)}, Value: []byte("v")})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for _, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, "t", d.Topic)
	}
	t.Logf("%+v", p.Stats())
	got := consumeAll(t, mc.BootstrapServers(), "t", 1000)
	require.Len(t, got, 1000)
}
