package eos_test

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/eos"
)

// A service that runs a session until SIGTERM, then stops it: Close aborts the transaction in
// progress, whose batch the group's next owner of its partitions does again.
func ExampleSession() {
	transform := func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		for _, m := range msgs {
			if err := out.Emit(ctx, &aioproducer.Message{Topic: "enriched", Key: m.Key, Value: m.Value}); err != nil {
				return err
			}
		}
		return nil
	}
	s, err := eos.New(
		kafka.ConfigMap{"bootstrap.servers": "localhost:9092", "group.id": "enricher", "auto.offset.reset": "earliest"},
		kafka.ConfigMap{"bootstrap.servers": "localhost:9092", "transactional.id": "enricher-" + os.Getenv("HOSTNAME")},
		[]string{"raw"}, transform)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runErr := s.Run(ctx) // until SIGTERM, or an error that stops the session
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(cctx); err != nil {
		log.Print(err)
	}
	var te *eos.TransformError
	switch {
	case errors.As(runErr, &te):
		log.Printf("the transform failed; a restart begins again at %v: %v", te.Offsets, te.Err)
	case errors.Is(runErr, aioproducer.ErrFatal):
		log.Printf("stopped (fenced by another instance with the same transactional.id?): %v", runErr)
	}
}
