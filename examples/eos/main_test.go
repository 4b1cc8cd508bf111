package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example runs against the in-process mock cluster and reads every output back once.
func TestExactlyOnceLoopRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := run(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// Against a cluster whose input topic is empty, the example exits within its deadline with an error
// that names the input topic, instead of committing empty transactions forever.
func TestExampleFailsWithinItsDeadlineWhenTheInputIsEmpty(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 1), aioproducertest.WithTopic(outTopic, 1))
	const budget = 8 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := run(ctx, cl.Bootstrap())
	took := time.Since(began)
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("the example succeeded without input")
	}
	if !strings.Contains(err.Error(), "is the input written to "+inTopic) {
		t.Errorf("the error does not name the input topic: %v", err)
	}
	if took > budget {
		t.Errorf("the example took %v, past its deadline of %v", took, budget)
	}
}
