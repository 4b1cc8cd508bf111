package rdk

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestVersionAndABI(t *testing.T) {
	if err := CheckVersion(); err != nil {
		t.Fatal(err)
	}
	v, s := Version()
	t.Logf("librdkafka %s (%#x)", s, v)
}

func TestProduceAndPoll(t *testing.T) {
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.CreateTopic("t", 2, 1); err != nil {
		t.Fatal(err)
	}
	p, err := New([][2]string{{"bootstrap.servers", mc.BootstrapServers()}, {"linger.ms", "1"}}, false, PartitionerNone)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b Batch
	b.Reset()
	const n = 1000
	for i := range n {
		b.Add("t", nil, []byte("value"), []kafka.Header{{Key: "h", Value: []byte("v")}, {Key: "null"}}, kafka.PartitionAny, 1764200000123, uint64(i))
	}
	got, err := p.Produce(&b, 0)
	if err != nil || got != n {
		t.Fatalf("Produce = %d, %v", got, err)
	}
	b.Reset()
	b.Add("t", []byte("k"), nil, nil, 7, 0, n)
	want := n + 1
	if got, err := p.Produce(&b, 0); got != 1 {
		// Refused at once when librdkafka knows the partition count already.
		if ke, ok := err.(kafka.Error); got != 0 || !ok || ke.Code() != kafka.ErrUnknownPartition {
			t.Fatalf("unknown partition Produce = %d, %v", got, err)
		}
		want = n
	}
	out := make([]Report, 300)
	seen := map[uint64]int32{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < want && time.Now().Before(deadline) {
		k, ev := p.Poll(100, out)
		for _, r := range out[:k] {
			seen[r.Opaque] = r.Err
			if r.Opaque < n && (r.Err != 0 || r.TsType == 1 && r.Timestamp != 1764200000123) {
				t.Fatalf("report %+v", r)
			}
		}
		if ev != nil {
			t.Logf("event %+v", ev)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d reports", len(seen))
	}
	if want == n+1 && seen[n] != int32(kafka.ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", kafka.ErrorCode(seen[n]))
	}
}

func TestConfigErrorNamesTheKey(t *testing.T) {
	_, err := New([][2]string{{"bootstrap.servers", "x:1"}, {"no.such", "1"}}, false, PartitionerNone)
	ce, ok := err.(*ConfigError)
	if !ok || ce.Key != "no.such" {
		t.Fatalf("err = %v", err)
	}
}
