package aioproducer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// Order is the value type of the typed examples.
type Order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

func ExampleTypedProducer() {
	bootstrap, stop := exampleCluster("orders")
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second) // closes p, which the typed producer only uses

	// Keys are strings, values Orders sent as JSON; both are serialized in Produce's goroutine.
	orders := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, aioproducer.JSONSerializer[Order]{})
	ctx := context.Background()
	f, err := orders.Produce(ctx, &aioproducer.TypedMessage[string, Order]{
		Topic: "orders",
		Key:   "customer-42",
		Value: Order{ID: 1, Item: "tea"},
	})
	if err != nil {
		log.Fatal(err) // a *SerializationError, or what Producer.Produce returns
	}
	d, err := f.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// The Future's Message is what was sent: the serialized key and value.
	fmt.Printf("%s = %s delivered to %s[%d]@%d\n", f.Message().Key, f.Message().Value, d.Topic, d.Partition, d.Offset)
	// Output:
	// customer-42 = {"id":1,"item":"tea"} delivered to orders[0]@0
}

// A serializer sees the topic, the field and the headers, and may add headers.
func ExampleSerializerFunc() {
	bootstrap, stop := exampleCluster("events")
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	text := aioproducer.SerializerFunc[string](func(sc *aioproducer.SerializationContext, v string) ([]byte, error) {
		sc.Headers = append(sc.Headers, aioproducer.Header{Key: sc.Field.String() + "-type", Value: []byte("text/plain")})
		return []byte(v), nil
	})
	events := aioproducer.NewTyped(p, text, text)
	ctx := context.Background()
	f, err := events.Produce(ctx, &aioproducer.TypedMessage[string, string]{
		Topic:   "events",
		Key:     "k",
		Value:   "hello",
		Headers: []aioproducer.Header{{Key: "trace", Value: []byte("abc")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	for _, h := range f.Message().Headers {
		fmt.Printf("%s: %s\n", h.Key, h.Value)
	}
	// Output:
	// trace: abc
	// key-type: text/plain
	// value-type: text/plain
}

// A serializer's failure fails that call alone: nothing is accepted, no outcome follows.
func ExampleSerializationError() {
	bootstrap, stop := exampleCluster("orders")
	defer stop()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWithin(p, 10*time.Second)

	errNoPrice := errors.New("no price")
	priced := aioproducer.SerializerFunc[Order](func(sc *aioproducer.SerializationContext, o Order) ([]byte, error) {
		if o.Item == "" {
			return nil, errNoPrice
		}
		return aioproducer.JSONSerializer[Order]{}.Serialize(sc, o)
	})
	orders := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, priced)
	_, err = orders.Produce(context.Background(), &aioproducer.TypedMessage[string, Order]{Topic: "orders", Key: "k", Value: Order{ID: 2}})

	var se *aioproducer.SerializationError
	if errors.As(err, &se) {
		fmt.Println(se.Field, "failed:", errors.Is(err, errNoPrice))
		fmt.Println(err)
	}
	// Output:
	// value failed: true
	// aioproducer: serializing the value for topic "orders": no price
}
