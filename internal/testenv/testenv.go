// Package testenv reads what the module's test suites outside package aioproducer (aioproducertest,
// kafkatest, reliability/kfake, the root directory's aioproducer_test files) take from the
// environment. Package aioproducer's own tests read it themselves (engine_batch_test.go): they cannot
// import a package that imports aioproducer.
package testenv

import (
	"os"
	"testing"

	"github.com/seed-f937cf20/aioproducer"
)

// Engine returns the option for the engine AIOPRODUCER_TEST_ENGINE names (EngineOf), so that a suite
// runs on either engine.
func Engine(t testing.TB) aioproducer.Option {
	t.Helper()
	return aioproducer.WithEngine(EngineOf(t))
}

// EngineOf returns the engine AIOPRODUCER_TEST_ENGINE names ("kafka" or "batch"; unset: the default),
// for a test whose expectations depend on it. A name it does not know fails the test.
func EngineOf(t testing.TB) aioproducer.Engine {
	t.Helper()
	e := aioproducer.DefaultEngine
	if v := os.Getenv("AIOPRODUCER_TEST_ENGINE"); v != "" {
		var err error
		if e, err = aioproducer.ParseEngine(v); err != nil {
			t.Fatalf("AIOPRODUCER_TEST_ENGINE: %v", err)
		}
	}
	return e
}
