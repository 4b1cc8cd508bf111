// Package testenv reads what the module's test suites outside the root package (aioproducertest,
// kafkatest, reliability/kfake) take from the environment. The root package's own tests read it
// themselves (engine_batch_test.go): they cannot import a package that imports aioproducer.
package testenv

import (
	"os"
	"testing"

	"github.com/seed-f937cf20/aioproducer"
)

// Engine returns the option for the engine AIOPRODUCER_TEST_ENGINE names ("kafka" or "batch"; unset:
// the default), so that a suite runs on either engine. A name it does not know fails the test.
func Engine(t testing.TB) aioproducer.Option {
	t.Helper()
	e := aioproducer.DefaultEngine
	if v := os.Getenv("AIOPRODUCER_TEST_ENGINE"); v != "" {
		var err error
		if e, err = aioproducer.ParseEngine(v); err != nil {
			t.Fatalf("AIOPRODUCER_TEST_ENGINE: %v", err)
		}
	}
	return aioproducer.WithEngine(e)
}
