package aioproducertest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// OrderService is the code under test: it produces through an aioproducer.Client, a *Producer in
// production and an aioproducertest.Fake in unit tests.
type OrderService struct {
	Events aioproducer.Client
}

// PlaceOrder publishes an "order placed" event and waits until Kafka has it.
func (s *OrderService) PlaceOrder(ctx context.Context, id string) error {
	fut, err := s.Events.Produce(ctx, &aioproducer.Message{Topic: "orders", Key: []byte(id), Value: []byte("placed")})
	if err != nil {
		return fmt.Errorf("order %s: %w", id, err)
	}
	if _, err := fut.Wait(ctx); err != nil {
		return fmt.Errorf("order %s: %w", id, err)
	}
	return nil
}

// A unit test of OrderService as you write it: NewFake closes the Fake at the end of the test.
func TestPlaceOrderWithAFake(t *testing.T) {
	fake := aioproducertest.NewFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		if string(m.Key) == "13" {
			return errors.New("unlucky order") // what this message's Future, callback or channel gets
		}
		return nil
	}))
	svc := &OrderService{Events: fake}
	ctx := context.Background()

	require.NoError(t, svc.PlaceOrder(ctx, "12"))
	require.ErrorContains(t, svc.PlaceOrder(ctx, "13"), "unlucky order")
	require.Len(t, fake.Messages(), 2) // History() adds each one's partition, offset and outcome
}

// The Fake in manual mode: the test decides when the broker answers, and how.
func TestPlaceOrderWaitsForTheBroker(t *testing.T) {
	fake := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	svc := &OrderService{Events: fake}

	done := make(chan error, 1)
	go func() { done <- svc.PlaceOrder(context.Background(), "42") }()
	for fake.Outstanding() == 0 { // PlaceOrder waits for its Future
		time.Sleep(time.Millisecond)
	}
	fake.FailNext(kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false))
	err := <-done
	require.True(t, aioproducer.IsOutcomeUnknown(err), "a timed-out message may be in the log: %v", err)
}

// Relay is transactional code under test: it copies a batch of input to topic "out" in one
// transaction, with the consumer's next offset, and aborts the transaction if it cannot commit. Code
// that runs transactions takes a *aioproducer.Producer: a Fake's is fake.Producer.
func Relay(ctx context.Context, p *aioproducer.Producer, values []string, next kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata) error {
	if err := p.BeginTransaction(); err != nil {
		return err
	}
	for _, v := range values {
		if _, err := p.Produce(ctx, &aioproducer.Message{Topic: "out", Value: []byte(v)}); err != nil {
			return err
		}
	}
	err := p.SendOffsetsToTransaction(ctx, []kafka.TopicPartition{next}, cgm)
	if err == nil {
		err = p.CommitTransaction(ctx)
	}
	if aioproducer.TxnRequiresAbort(err) {
		return errors.Join(err, p.AbortTransaction(ctx))
	}
	return err
}

// A unit test of transactional code with a Transactional Fake: one transaction commits, the next
// one's commit fails as the test asks, and Relay aborts it.
func TestRelayWithATransactionalFake(t *testing.T) {
	fake := aioproducertest.NewFake(t, aioproducertest.Transactional())
	ctx := context.Background()
	require.NoError(t, fake.InitTransactions(ctx))
	cgm, err := kafka.NewTestConsumerGroupMetadata("relay")
	require.NoError(t, err)
	in := "in"

	require.NoError(t, Relay(ctx, fake.Producer, []string{"a", "b"}, kafka.TopicPartition{Topic: &in, Offset: 2}, cgm))
	fake.FailNextTxn("CommitTransaction", aioproducertest.AbortableError(kafka.ErrInvalidTxnState))
	err = Relay(ctx, fake.Producer, []string{"c"}, kafka.TopicPartition{Topic: &in, Offset: 3}, cgm)
	require.True(t, aioproducer.TxnRequiresAbort(err), "%v", err)

	txns := fake.Transactions()
	require.Len(t, txns, 2)
	require.True(t, txns[0].Committed)
	require.Len(t, txns[0].Messages, 2)                   // as History gives them
	require.Equal(t, "relay", txns[0].Offsets[0].GroupID) // and Offsets[0].Offsets, as sent
	require.True(t, txns[1].Aborted)                      // its messages in History have Aborted set
}

// An integration test on librdkafka's mock cluster: a real Producer, the topic read back.
func TestPlaceOrderOnTheMockCluster(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("orders", 3)) // stopped at the end of the test
	p := c.NewProducer(t, nil)                                                 // closed at the end of the test
	svc := &OrderService{Events: p}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	require.NoError(t, svc.PlaceOrder(ctx, "12"))
	recs := c.Records(t, "orders", 1) // waits for 1 record: key, value, headers, timestamp, partition, offset
	require.Equal(t, "12", string(recs[0].Key))
}

// A unit test of OrderService with the Fake: no broker, no librdkafka. In a test function, write
// aioproducertest.NewFake(t, ...), which closes the Fake at the end of the test.
func Example_fake() {
	fake, err := aioproducertest.StartFake(aioproducertest.FailWith(func(m *aioproducer.Message) error {
		if string(m.Key) == "13" {
			return errors.New("unlucky order")
		}
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer fake.Close(context.Background())
	ctx := context.Background()

	svc := &OrderService{Events: fake}
	fmt.Println(svc.PlaceOrder(ctx, "12"))
	fmt.Println(svc.PlaceOrder(ctx, "13"))
	fmt.Println(svc.PlaceOrder(ctx, "14"))

	for _, s := range fake.History() {
		fmt.Printf("%s key %s: partition %d offset %d, err %v\n", s.Message.Topic, s.Message.Key, s.Partition, s.Offset, s.Err)
	}
	// Output:
	// <nil>
	// order 13: unlucky order
	// <nil>
	// orders key 12: partition 0 offset 0, err <nil>
	// orders key 13: partition 0 offset -1, err unlucky order
	// orders key 14: partition 0 offset 1, err <nil>
}

// With ManualCompletion the test decides when the broker answers: here, that PlaceOrder waits for it
// and gives up when its context ends.
func Example_manualCompletion() {
	fake, err := aioproducertest.StartFake(aioproducertest.ManualCompletion())
	if err != nil {
		log.Fatal(err)
	}
	svc := &OrderService{Events: fake}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fmt.Println(svc.PlaceOrder(ctx, "1")) // nobody completes it
	fmt.Println("outstanding:", fake.Outstanding())

	done := make(chan error)
	go func() { done <- svc.PlaceOrder(context.Background(), "2") }()
	for fake.Outstanding() < 2 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("completed:", fake.CompleteAll())
	fmt.Println(<-done)

	fmt.Println(fake.Close(context.Background()))
	// Output:
	// order 1: context deadline exceeded
	// outstanding: 1
	// completed: 2
	// <nil>
	// <nil>
}

// A Transactional Fake runs transactions with the real producer's rules, records each, and fails
// calls as the test asks: FenceProducer, as a newer producer with the same transactional.id would.
func Example_transactions() {
	fake, err := aioproducertest.StartFake(aioproducertest.Transactional(),
		aioproducertest.WithProducerOptions(aioproducer.WithLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer fake.Close(ctx)
	cgm, err := kafka.NewTestConsumerGroupMetadata("relay")
	if err != nil {
		log.Fatal(err)
	}
	in := "in"
	if err := fake.InitTransactions(ctx); err != nil {
		log.Fatal(err)
	}
	for i, commit := range []bool{true, false} {
		if err := fake.BeginTransaction(); err != nil {
			log.Fatal(err)
		}
		fut, err := fake.Produce(ctx, &aioproducer.Message{Topic: "out", Value: fmt.Appendf(nil, "value %d", i)})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := fut.Wait(ctx); err != nil { // the broker has it
			log.Fatal(err)
		}
		if err := fake.SendOffsetsToTransaction(ctx, []kafka.TopicPartition{{Topic: &in, Offset: kafka.Offset(i + 1)}}, cgm); err != nil {
			log.Fatal(err)
		}
		if commit {
			err = fake.CommitTransaction(ctx)
		} else {
			err = fake.AbortTransaction(ctx)
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	for _, t := range fake.Transactions() {
		o := t.Offsets[0]
		fmt.Printf("committed %v, aborted %v: %q; group %s at %s[%d]@%d\n", t.Committed, t.Aborted,
			t.Messages[0].Message.Value, o.GroupID, *o.Offsets[0].Topic, o.Offsets[0].Partition, o.Offsets[0].Offset)
	}

	fake.FenceProducer()
	err = fake.BeginTransaction()
	fmt.Println("fatal:", aioproducer.IsFatal(err), err)
	_, err = fake.Produce(ctx, &aioproducer.Message{Topic: "out", Value: []byte("late")})
	fmt.Println(errors.Is(err, aioproducer.ErrFatal))
	// Output:
	// committed true, aborted false: "value 0"; group relay at in[0]@1
	// committed false, aborted true: "value 1"; group relay at in[0]@2
	// fatal: true aioproducer: BeginTransaction: Fatal error: Local: This instance has been fenced by a newer instance (fatal: close the producer)
	// true
}

// An integration test of OrderService against librdkafka's mock cluster, with a real Producer. In a
// test function, write aioproducertest.NewCluster(t, ...), which stops the cluster at the end of the
// test, and c.NewProducer(t, nil).
func Example_cluster() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("orders", 1))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := aioproducer.New(c.Config())
	if err != nil {
		log.Fatal(err)
	}
	svc := &OrderService{Events: p}
	for _, id := range []string{"12", "13"} {
		if err := svc.PlaceOrder(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}

	recs, err := c.ReadTopic(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("%v key %s value %s\n", r, r.Key, r.Value)
	}
	// Output:
	// orders[0]@0 key 12 value placed
	// orders[0]@1 key 13 value placed
}

// A Ledger checks that every message got exactly one outcome and that the topic holds exactly the
// delivered ones, once each, in order per key.
func ExampleLedger() {
	c, err := aioproducertest.StartCluster(aioproducertest.WithTopic("events", 2))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := aioproducer.New(c.Config())
	if err != nil {
		log.Fatal(err)
	}

	l := aioproducertest.NewLedger()
	for i := range 100 {
		m := &aioproducer.Message{Topic: "events", Key: []byte{byte('a' + i%3)}, Value: []byte("event")}
		if _, err := l.Produce(ctx, p, m); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil { // every outcome is handed over when Close returns
		log.Fatal(err)
	}
	if err := l.Settle(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Check())
	recs, err := c.ReadTopic(ctx, "events")
	if err != nil {
		log.Fatal(err)
	}
	s, err := l.CheckLog(recs, aioproducertest.LogCheck{})
	fmt.Println(err)
	fmt.Println(l.Summary().Delivered, s.DeliveredOnce)
	// Output:
	// <nil>
	// <nil>
	// 100 100
}
