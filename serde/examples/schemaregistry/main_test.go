package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-f937cf20/aioproducer/serde/internal/fakeregistry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunsOnTheMockRegistry runs the example as `go run` does by default.
func TestRunsOnTheMockRegistry(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP", "")
	t.Setenv("SCHEMA_REGISTRY_URL", "")
	if err := run(); err != nil {
		t.Fatal(err)
	}
}

// TestRunsAgainstARegistryURL runs the example's code against a registry over HTTP, as with
// SCHEMA_REGISTRY_URL set: the fake registry of the tests stands in for a real one.
func TestRunsAgainstARegistryURL(t *testing.T) {
	fr := fakeregistry.New()
	defer fr.Close()
	t.Setenv("KAFKA_BOOTSTRAP", "")
	t.Setenv("SCHEMA_REGISTRY_URL", fr.URL())
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if got := fr.Requests()["POST /subjects/{subject}/versions"]; got != 1 {
		t.Errorf("the schema was registered %d times, want once: %v", got, fr.Requests())
	}
	if got := fr.Subjects(); len(got) != 1 || got[0] != "payments-value" {
		t.Errorf("subjects %v, want [payments-value]", got)
	}
	if u := fr.Unhandled(); len(u) > 0 {
		t.Errorf("requests the fake registry did not speak: %v", u)
	}
}
