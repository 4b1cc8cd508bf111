package eos

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every session closes its consumer and
// its producer.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
