package main

import (
	"fmt"
	"os"
	"testing"
	"time"

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
// SCHEMA_REGISTRY_URL set: the real registry that SCHEMA_REGISTRY_URL names when the test runs
// (make test-serde starts one), through a proxy that counts the requests, or else the fake registry of
// the tests. On a real registry the topic, and so the subject, is one of this run's own.
func TestRunsAgainstARegistryURL(t *testing.T) {
	topic := "payments"
	fr := fakeregistry.New()
	if real := os.Getenv("SCHEMA_REGISTRY_URL"); real != "" {
		fr.Close()
		var err error
		if fr, err = fakeregistry.NewProxy(real); err != nil {
			t.Fatal(err)
		}
		topic = fmt.Sprintf("payments-%d", time.Now().UnixNano())
		t.Logf("SCHEMA_REGISTRY_URL=%s: the registry is real; topic %s", real, topic)
	}
	defer fr.Close()
	t.Setenv("KAFKA_BOOTSTRAP", "")
	t.Setenv("KAFKA_TOPIC", topic)
	t.Setenv("SCHEMA_REGISTRY_URL", fr.URL())
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if got := fr.Requests()["POST /subjects/{subject}/versions"]; got != 1 {
		t.Errorf("the schema was registered %d times, want once: %v", got, fr.Requests())
	}
	if got := fr.Subjects(); len(got) != 1 || got[0] != topic+"-value" {
		t.Errorf("subjects %v, want [%s-value]", got, topic)
	}
	if u := fr.Unhandled(); len(u) > 0 {
		t.Errorf("requests the fake registry did not speak: %v", u)
	}
}
