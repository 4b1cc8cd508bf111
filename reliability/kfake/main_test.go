package kfake

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: the producer's, librdkafka's Go side,
// kfake's or the read-back client's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
