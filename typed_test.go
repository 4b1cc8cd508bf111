package aioproducer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// order is a value type for the typed tests.
type order struct {
	ID    int    `json:"id"`
	Item  string `json:"item"`
	Price int    `json:"price_cents"`
}

// countingSerializer counts its calls and serializes with s.
type countingSerializer[T any] struct {
	calls atomic.Int64
	s     Serializer[T]
}

func (c *countingSerializer[T]) Serialize(sc *SerializationContext, v T) ([]byte, error) {
	c.calls.Add(1)
	return c.s.Serialize(sc, v)
}

// headerAdder is a serializer that adds a header naming the field and what it saw, and sends the
// string's bytes.
var headerAdder = SerializerFunc[string](func(sc *SerializationContext, v string) ([]byte, error) {
	var seen []string
	for _, h := range sc.Headers {
		seen = append(seen, h.Key)
	}
	sc.Headers = append(sc.Headers, Header{Key: sc.Field.String() + "-ser", Value: []byte(strings.Join(seen, ","))})
	return []byte(sc.Topic + "/" + v), nil
})

// errBadValue is what failingOn fails with.
var errBadValue = errors.New("no such value")

// failingOn serializes strings as they are, and fails for bad.
func failingOn(bad string) Serializer[string] {
	return SerializerFunc[string](func(_ *SerializationContext, v string) ([]byte, error) {
		if v == bad {
			return nil, fmt.Errorf("%q: %w", v, errBadValue)
		}
		return []byte(v), nil
	})
}

func TestTypedProducerSerializesKeyAndValueInEveryVariant(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	tp := NewTyped(newFakeProducer(t, fe), StringSerializer{}, JSONSerializer[order]{})
	ctx := ctxTimeout(t, 10*time.Second)
	tm := func(i int) *TypedMessage[string, order] {
		return &TypedMessage[string, order]{Topic: "orders", Key: fmt.Sprint("k", i), Value: order{ID: i, Item: "tea", Price: 250}}
	}
	want := func(i int) (string, string) {
		return fmt.Sprint("k", i), fmt.Sprintf(`{"id":%d,"item":"tea","price_cents":250}`, i)
	}

	f, err := tp.Produce(ctx, tm(0))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	k, v := want(0)
	assert.Equal(t, k, string(f.Message().Key), "Future.Message is the serialized message")
	assert.Equal(t, v, string(f.Message().Value))

	f, err = tp.TryProduce(tm(1))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	done := make(chan error, 1)
	require.NoError(t, tp.ProduceFunc(ctx, tm(2), func(_ Delivery, err error) { done <- err }))
	require.NoError(t, <-done)

	ch := make(chan TypedResult[string, order], 1)
	m3 := tm(3)
	require.NoError(t, tp.ProduceChan(ctx, m3, ch))
	r := <-ch
	require.NoError(t, r.Err)
	assert.Same(t, m3, r.Message, "the TypedResult names the typed message")
	assert.EqualValues(t, 3, r.Delivery.Offset)

	futs, err := tp.ProduceBatch(ctx, []*TypedMessage[string, order]{tm(4), tm(5)})
	require.NoError(t, err)
	require.Len(t, futs, 2)
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, tp.Flush(ctx))

	got := fe.enqueued()
	require.Len(t, got, 6)
	for i, m := range got {
		k, v := want(i)
		assert.Equal(t, k, string(m.Key), "message %d", i)
		assert.Equal(t, v, string(m.Value), "message %d", i)
	}
	assert.EqualValues(t, 6, tp.Stats().Delivered)
	assert.Same(t, tp.Producer(), tp.p)
}

func TestSerializersSeeTopicFieldAndHeadersAndMayAddHeaders(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	tp := NewTyped(newFakeProducer(t, fe), headerAdder, headerAdder)
	ctx := ctxTimeout(t, 10*time.Second)
	own := make([]Header, 1, 4) // room to append: the serializers must not write into it
	own[0] = Header{Key: "own", Value: []byte("1")}
	f, err := tp.Produce(ctx, &TypedMessage[string, string]{Topic: "t", Key: "k", Value: "v", Headers: own})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	m := f.Message()
	assert.Equal(t, "t/k", string(m.Key))
	assert.Equal(t, "t/v", string(m.Value))
	assert.Equal(t, []Header{
		{Key: "own", Value: []byte("1")},
		{Key: "key-ser", Value: []byte("own")},
		{Key: "value-ser", Value: []byte("own,key-ser")}, // the value serializer sees the key's header
	}, m.Headers)
	assert.Len(t, own, 1)
	assert.Equal(t, Header{}, own[:2][1], "a serializer wrote into the caller's header array")
}

func TestSerializationErrorFailsOnlyItsCall(t *testing.T) {
	for _, field := range []Field{FieldKey, FieldValue} {
		t.Run(field.String(), func(t *testing.T) {
			fe := newMemEngine(memConfig{Auto: true})
			keys, values := failingOn("-"), failingOn("-")
			if field == FieldKey {
				keys = failingOn("bad")
			} else {
				values = failingOn("bad")
			}
			tp := NewTyped(newFakeProducer(t, fe), keys, values)
			ctx := ctxTimeout(t, 10*time.Second)
			var futs []*Future
			for _, s := range []string{"a", "bad", "b"} {
				f, err := tp.Produce(ctx, &TypedMessage[string, string]{Topic: "orders", Key: s, Value: s})
				if s != "bad" {
					require.NoError(t, err)
					futs = append(futs, f)
					continue
				}
				require.Error(t, err)
				assert.Nil(t, f)
				var se *SerializationError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, field, se.Field)
				assert.Equal(t, field == FieldKey, se.IsKey())
				assert.Equal(t, "orders", se.Topic)
				assert.ErrorIs(t, err, errBadValue, "it wraps the serializer's error")
				assert.NotErrorIs(t, err, ErrInvalidMessage)
				assert.EqualError(t, err, `aioproducer: serializing the `+field.String()+` for topic "orders": "bad": no such value`)

				// The callback and channel variants fail the same way and never call back.
				called := false
				err = tp.ProduceFunc(ctx, &TypedMessage[string, string]{Topic: "orders", Key: s, Value: s}, func(Delivery, error) { called = true })
				require.ErrorAs(t, err, &se)
				err = tp.ProduceChan(ctx, &TypedMessage[string, string]{Topic: "orders", Key: s, Value: s}, make(chan TypedResult[string, string], 1))
				require.ErrorAs(t, err, &se)
				_, err = tp.TryProduce(&TypedMessage[string, string]{Topic: "orders", Key: s, Value: s})
				require.ErrorAs(t, err, &se)
				require.NoError(t, tp.Flush(ctx))
				assert.False(t, called)
			}
			for _, f := range futs {
				_, err := f.Wait(ctx)
				require.NoError(t, err)
			}
			require.NoError(t, tp.Flush(ctx))
			s := tp.Stats()
			assert.EqualValues(t, 2, s.Delivered, "only the two good messages were accepted")
			assert.Zero(t, s.Failed)
			assert.Zero(t, s.HeldMessages)
		})
	}
}

func TestProduceBatchWithAMessageThatFailsSerializationAcceptsNone(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	values := &countingSerializer[string]{s: failingOn("bad")}
	tp := NewTyped(newFakeProducer(t, fe), StringSerializer{}, Serializer[string](values))
	ctx := ctxTimeout(t, 10*time.Second)
	futs, err := tp.ProduceBatch(ctx, []*TypedMessage[string, string]{
		{Topic: "t", Key: "0", Value: "ok"},
		{Topic: "t", Key: "1", Value: "bad"},
		{Topic: "t", Key: "2", Value: "ok"},
	})
	assert.Empty(t, futs)
	var se *SerializationError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, FieldValue, se.Field)
	assert.ErrorContains(t, err, "message 1: aioproducer: serializing the value")
	assert.EqualValues(t, 2, values.calls.Load(), "it stops at the first failure")
	require.NoError(t, tp.Flush(ctx))
	assert.Zero(t, tp.Stats().Delivered)
	assert.Empty(t, fe.enqueued())

	futs, err = tp.ProduceBatch(ctx, []*TypedMessage[string, string]{{Topic: "t", Value: "ok"}, {Topic: "bad topic"}})
	require.ErrorIs(t, err, ErrInvalidMessage)
	assert.ErrorContains(t, err, "message 1:")
	assert.Empty(t, futs)
}

func TestInvalidMessageOrClosedProducerFailsBeforeSerializing(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	keys := &countingSerializer[string]{s: StringSerializer{}}
	values := &countingSerializer[string]{s: StringSerializer{}}
	tp := NewTyped(p, Serializer[string](keys), Serializer[string](values))
	ctx := ctxTimeout(t, 10*time.Second)

	for name, tm := range map[string]*TypedMessage[string, string]{
		"nil":                nil,
		"empty topic":        {Key: "k"},
		"bad topic":          {Topic: "a b", Key: "k"},
		"negative partition": {Topic: "t", Partition: ExplicitPartition(-1)},
		"timestamp 1970":     {Topic: "t", Timestamp: time.UnixMilli(0)},
		"header with NUL":    {Topic: "t", Headers: []Header{{Key: "a\x00b"}}},
	} {
		_, err := tp.Produce(ctx, tm)
		assert.ErrorIs(t, err, ErrInvalidMessage, name)
		_, err = tp.ProduceBatch(ctx, []*TypedMessage[string, string]{tm})
		assert.ErrorIs(t, err, ErrInvalidMessage, name)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := tp.Produce(done, &TypedMessage[string, string]{Topic: "t"})
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, tp.ProduceFunc(done, &TypedMessage[string, string]{Topic: "t"}, func(Delivery, error) {}), context.Canceled)
	_, err = tp.ProduceBatch(done, []*TypedMessage[string, string]{{Topic: "t"}})
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, tp.Close(ctx))
	_, err = tp.Produce(ctx, &TypedMessage[string, string]{Topic: "t"})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = tp.TryProduce(&TypedMessage[string, string]{Topic: "t"})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, tp.Flush(ctx), ErrClosed)

	assert.Zero(t, keys.calls.Load(), "the key serializer ran for a message that could not be sent")
	assert.Zero(t, values.calls.Load(), "the value serializer ran for a message that could not be sent")
}

func TestTypedProduceFuncAndChanRefuseNilTargets(t *testing.T) {
	tp := NewTyped(newFakeProducer(t, newMemEngine(memConfig{Auto: true})), StringSerializer{}, StringSerializer{})
	ctx := ctxTimeout(t, 10*time.Second)
	err := tp.ProduceFunc(ctx, &TypedMessage[string, string]{Topic: "t"}, nil)
	assert.ErrorContains(t, err, "nil callback")
	assert.NotErrorIs(t, err, ErrInvalidMessage)
	err = tp.ProduceChan(ctx, &TypedMessage[string, string]{Topic: "t"}, nil)
	assert.ErrorContains(t, err, "nil channel")
}

func TestTypedTryProduceFailsWithErrBufferFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{}) // nothing is delivered until the test says so
		tp := NewTyped(newFakeProducer(t, fe, WithMaxBuffered(1, 1<<20)), StringSerializer{}, StringSerializer{})
		f, err := tp.TryProduce(&TypedMessage[string, string]{Topic: "t", Value: "1"})
		require.NoError(t, err)
		_, err = tp.TryProduce(&TypedMessage[string, string]{Topic: "t", Value: "2"})
		require.ErrorIs(t, err, ErrBufferFull)
		synctest.Wait() // the first message has reached the engine
		fe.deliver(-1)
		_, err = f.Wait(t.Context())
		require.NoError(t, err)
	})
}

func TestNewTypedPanicsOnNil(t *testing.T) {
	p := newFakeProducer(t, newMemEngine(memConfig{Auto: true}))
	assert.PanicsWithValue(t, "aioproducer: NewTyped called with a nil *Producer", func() {
		NewTyped[string, string](nil, StringSerializer{}, StringSerializer{})
	})
	assert.PanicsWithValue(t, "aioproducer: NewTyped called with a nil key Serializer", func() {
		NewTyped[string, string](p, nil, StringSerializer{})
	})
	assert.PanicsWithValue(t, "aioproducer: NewTyped called with a nil value Serializer", func() {
		NewTyped[string, string](p, StringSerializer{}, nil)
	})
}

func TestTypedProducerIsSafeForConcurrentUse(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	tp := NewTyped(newFakeProducer(t, fe), Nullable(StringSerializer{}), JSONSerializer[*order]{})
	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprint(g, "-", i)
				f, err := tp.Produce(ctx, &TypedMessage[*string, *order]{Topic: "t", Key: &k, Value: &order{ID: i}})
				if !assert.NoError(t, err) {
					return
				}
				if _, err := f.Wait(ctx); !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, tp.Flush(ctx)) // the counters are updated after the futures resolve
	assert.EqualValues(t, 1600, tp.Stats().Delivered)
}

// TestTypedMessagesReadBackFromTheCluster checks what reaches the broker: null and empty keys and
// values told apart, the serializers' headers after the message's own, and the JSON bytes.
func TestTypedMessagesReadBackFromTheCluster(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("typed", 1, 1))
	p := newTestProducer(t, mc.BootstrapServers(), nil)
	withHeader := SerializerFunc[*order](func(sc *SerializationContext, v *order) ([]byte, error) {
		sc.Headers = append(sc.Headers, Header{Key: "content-type", Value: []byte("application/json")})
		return JSONSerializer[*order]{}.Serialize(sc, v)
	})
	tp := NewTyped(p, Nullable(StringSerializer{}), Serializer[*order](withHeader))
	ctx := ctxTimeout(t, 30*time.Second)
	empty, key := "", "k"
	futs, err := tp.ProduceBatch(ctx, []*TypedMessage[*string, *order]{
		{Topic: "typed", Key: &key, Value: &order{ID: 1, Item: "tea"}, Headers: []Header{{Key: "own", Value: []byte("x")}}},
		{Topic: "typed", Key: nil, Value: nil}, // null key, tombstone
		{Topic: "typed", Key: &empty, Value: &order{}},
	})
	require.NoError(t, err)
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	recs := consumeAll(t, mc.BootstrapServers(), "typed", 3)

	assert.Equal(t, "k", string(recs[0].Key))
	assert.JSONEq(t, `{"id":1,"item":"tea","price_cents":0}`, string(recs[0].Value))
	require.Len(t, recs[0].Headers, 2)
	assert.Equal(t, "own", recs[0].Headers[0].Key)
	assert.Equal(t, "content-type", recs[0].Headers[1].Key)
	assert.Equal(t, "application/json", string(recs[0].Headers[1].Value))

	assert.Nil(t, recs[1].Key, "a nil *string is a null key")
	assert.Nil(t, recs[1].Value, "a nil *order is a null value")

	assert.NotNil(t, recs[2].Key, "an empty string is an empty key, not a null one")
	assert.Empty(t, recs[2].Key)
	assert.JSONEq(t, `{"id":0,"item":"","price_cents":0}`, string(recs[2].Value))
}

func TestBuiltinSerializers(t *testing.T) {
	sc := &SerializationContext{Topic: "t", Field: FieldValue}

	b, err := BytesSerializer{}.Serialize(sc, []byte("raw"))
	require.NoError(t, err)
	assert.Equal(t, "raw", string(b))
	b, err = BytesSerializer{}.Serialize(sc, nil)
	require.NoError(t, err)
	assert.Nil(t, b)
	b, err = BytesSerializer{}.Serialize(sc, []byte{})
	require.NoError(t, err)
	assert.NotNil(t, b, "empty is not null")

	b, err = StringSerializer{}.Serialize(sc, "héllo")
	require.NoError(t, err)
	assert.Equal(t, "héllo", string(b))
	b, err = StringSerializer{}.Serialize(sc, "")
	require.NoError(t, err)
	assert.NotNil(t, b, "the empty string is an empty value, not a null one")
	assert.Empty(t, b)

	b, err = JSONSerializer[order]{}.Serialize(sc, order{ID: 7, Item: "<tea>"})
	require.NoError(t, err)
	assert.Equal(t, `{"id":7,"item":"\u003ctea\u003e","price_cents":0}`, string(b))
	for name, got := range map[string]func() ([]byte, error){
		"nil pointer":   func() ([]byte, error) { return JSONSerializer[*order]{}.Serialize(sc, nil) },
		"nil map":       func() ([]byte, error) { return JSONSerializer[map[string]int]{}.Serialize(sc, nil) },
		"nil slice":     func() ([]byte, error) { return JSONSerializer[[]int]{}.Serialize(sc, nil) },
		"nil interface": func() ([]byte, error) { return JSONSerializer[any]{}.Serialize(sc, nil) },
		"nil in any":    func() ([]byte, error) { return JSONSerializer[any]{}.Serialize(sc, (*order)(nil)) },
	} {
		b, err := got()
		require.NoError(t, err, name)
		assert.Nil(t, b, "%s is null, not the JSON text null", name)
	}
	b, err = JSONSerializer[[]int]{}.Serialize(sc, []int{})
	require.NoError(t, err)
	assert.Equal(t, "[]", string(b))
	b, err = JSONSerializer[any]{}.Serialize(sc, 0)
	require.NoError(t, err)
	assert.Equal(t, "0", string(b))
	_, err = JSONSerializer[chan int]{}.Serialize(sc, make(chan int))
	var ute *json.UnsupportedTypeError
	assert.ErrorAs(t, err, &ute)

	n := Nullable[string](StringSerializer{})
	b, err = n.Serialize(sc, nil)
	require.NoError(t, err)
	assert.Nil(t, b)
	s := "x"
	b, err = n.Serialize(sc, &s)
	require.NoError(t, err)
	assert.Equal(t, "x", string(b))

	assert.Equal(t, "key", FieldKey.String())
	assert.Equal(t, "value", FieldValue.String())
	assert.Equal(t, "Field(9)", Field(9).String())
}

// A typed producer over a transactional Producer writes in its transactions; outside one it fails
// before serializing, and a message that fails serialization does not stop the commit.
func TestTypedProducerInATransaction(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("typed-txn", 1, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"transactional.id": "typed-txn"})
	values := &countingSerializer[string]{s: failingOn("bad")}
	tp := NewTyped(p, StringSerializer{}, Serializer[string](values))
	ctx := ctxTimeout(t, 30*time.Second)

	_, err := tp.Produce(ctx, &TypedMessage[string, string]{Topic: "typed-txn", Value: "early"})
	require.ErrorIs(t, err, ErrNotInTransaction)
	require.NoError(t, tp.InitTransactions(ctx))
	_, err = tp.Produce(ctx, &TypedMessage[string, string]{Topic: "typed-txn", Value: "early"})
	require.ErrorIs(t, err, ErrNotInTransaction)
	assert.Zero(t, values.calls.Load(), "serialized outside a transaction")

	require.NoError(t, tp.BeginTransaction())
	var futs []*Future
	for _, v := range []string{"a", "bad", "b"} {
		f, err := tp.Produce(ctx, &TypedMessage[string, string]{Topic: "typed-txn", Key: v, Value: v})
		if v == "bad" {
			var se *SerializationError
			require.ErrorAs(t, err, &se)
			continue
		}
		require.NoError(t, err)
		futs = append(futs, f)
	}
	require.NoError(t, tp.CommitTransaction(ctx), "a serialization failure is no failed message of the transaction")
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}

	require.NoError(t, tp.BeginTransaction())
	_, err = tp.Produce(ctx, &TypedMessage[string, string]{Topic: "typed-txn", Key: "c", Value: "c"})
	require.NoError(t, err)
	require.NoError(t, tp.AbortTransaction(ctx))
	assert.Equal(t, []string{"a", "b"}, readTopic(t, mc.BootstrapServers(), "typed-txn", "read_uncommitted"),
		"the committed messages, and not the aborted one (never sent)")
}
