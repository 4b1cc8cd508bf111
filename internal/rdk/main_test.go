package rdk

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: every handle and mock cluster must be
// closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
