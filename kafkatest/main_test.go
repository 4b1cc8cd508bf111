//go:build kafka

package kafkatest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: every producer, consumer and admin
// client must be closed, and the library must stop all of its goroutines in Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
