package aioproducertest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// Price is a typed value: the JSONSerializer writes it.
type Price struct {
	SKU   string `json:"sku"`
	Cents int    `json:"cents"`
}

// PriceService produces typed messages through an aioproducer.TypedClient: a *TypedProducer in
// production, the one NewTypedFake returns in unit tests.
type PriceService struct {
	Prices aioproducer.TypedClient[string, Price]
}

// SetPrice publishes a price, keyed by its SKU, and waits until Kafka has it.
func (s *PriceService) SetPrice(ctx context.Context, p Price) error {
	fut, err := s.Prices.Produce(ctx, &aioproducer.TypedMessage[string, Price]{Topic: "prices", Key: p.SKU, Value: p})
	if err != nil {
		return fmt.Errorf("price of %s: %w", p.SKU, err)
	}
	if _, err := fut.Wait(ctx); err != nil {
		return fmt.Errorf("price of %s: %w", p.SKU, err)
	}
	return nil
}

// A unit test of PriceService: the TypedProducer serializes as in production, the Fake shows the bytes.
func TestSetPriceWithATypedFake(t *testing.T) {
	prices, fake := aioproducertest.NewTypedFake(t, aioproducer.StringSerializer{}, aioproducer.JSONSerializer[Price]{})
	svc := &PriceService{Prices: prices}

	require.NoError(t, svc.SetPrice(context.Background(), Price{SKU: "A-1", Cents: 250}))
	sent := fake.Messages()
	require.Len(t, sent, 1)
	require.Equal(t, "A-1", string(sent[0].Key))
	require.JSONEq(t, `{"sku":"A-1","cents":250}`, string(sent[0].Value))
}

// The typed fake completes as the Fake does: FailWith, ManualCompletion; and it is a TypedClient.
func TestTypedFakeFailsAsTheFakeDoes(t *testing.T) {
	unlucky := errors.New("unlucky")
	prices, fake := aioproducertest.NewTypedFake(t, aioproducer.StringSerializer{}, aioproducer.JSONSerializer[Price]{},
		aioproducertest.FailWith(func(m *aioproducer.Message) error {
			if string(m.Key) == "B-13" {
				return unlucky
			}
			return nil
		}))
	var client aioproducer.TypedClient[string, Price] = prices
	ctx := context.Background()
	ch := make(chan aioproducer.TypedResult[string, Price], 2)
	require.NoError(t, client.ProduceChan(ctx, &aioproducer.TypedMessage[string, Price]{Topic: "prices", Key: "B-13"}, ch))
	require.NoError(t, client.ProduceChan(ctx, &aioproducer.TypedMessage[string, Price]{Topic: "prices", Key: "B-14"}, ch))
	require.NoError(t, client.Flush(ctx))
	for range 2 {
		r := <-ch
		if r.Message.Key == "B-13" {
			require.ErrorIs(t, r.Err, unlucky)
		} else {
			require.NoError(t, r.Err)
		}
	}
	require.Len(t, fake.History(), 2)
	require.NoError(t, client.Health())
	require.NoError(t, client.Close(ctx))
	_, err := fake.Produce(ctx, &aioproducer.Message{Topic: "prices"})
	require.ErrorIs(t, err, aioproducer.ErrClosed, "closing the TypedProducer closes the Fake: they are one producer")
}

// PriceService in a unit test with a typed Fake. In a test function, write
// aioproducertest.NewTypedFake(t, keys, values, ...), which closes it at the end of the test.
func Example_typedFake() {
	prices, fake, err := aioproducertest.StartTypedFake(aioproducer.StringSerializer{}, aioproducer.JSONSerializer[Price]{})
	if err != nil {
		log.Fatal(err)
	}
	defer prices.Close(context.Background())
	svc := &PriceService{Prices: prices}

	fmt.Println(svc.SetPrice(context.Background(), Price{SKU: "A-1", Cents: 250}))
	for _, s := range fake.History() {
		fmt.Printf("%s key %s value %s: offset %d\n", s.Message.Topic, s.Message.Key, s.Message.Value, s.Offset)
	}
	// Output:
	// <nil>
	// prices key A-1 value {"sku":"A-1","cents":250}: offset 0
}
