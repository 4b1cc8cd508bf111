package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example runs against the in-process mock cluster and reads every output back once.
func TestExactlyOnceLoopRuns(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP", "")
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
