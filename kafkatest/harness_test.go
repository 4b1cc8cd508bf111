//go:build kafka

package kafkatest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The harness itself, given bad input and faults: each case must end with a clear message and a
// non-zero exit within a bounded time, and leave no broker process behind.

// harnessScript returns the path of scripts/kafka.sh, or skips the test.
func harnessScript(t *testing.T) string {
	t.Helper()
	s := os.Getenv(envScript)
	if s == "" {
		t.Skipf("%s is not set: %s", envScript, howToRun)
	}
	return s
}

// runHarness runs kafka.sh args with env added, in a state dir of its own, and returns its exit
// code, its stderr and how long it took. It fails the test if the script outlives limit.
func runHarness(t *testing.T, limit time.Duration, stateDir string, env []string, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{harnessScript(t)}, args...)...)
	cmd.Env = append(append(os.Environ(), "KAFKA_STATE_DIR="+stateDir), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	require.NoError(t, ctx.Err(), "kafka.sh %v did not end within %v; stderr:\n%s", args, limit, stderr.String())
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "kafka.sh %v: %v", args, err)
		code = ee.ExitCode()
	}
	return code, stderr.String(), took
}

// requireNoBroker fails the test if any process still runs with stateDir on its command line: the
// harness marks every broker's java command line with its state dir.
func requireNoBroker(t *testing.T, stateDir string) {
	t.Helper()
	require.Eventually(t, func() bool {
		out, err := exec.Command("pgrep", "-f", "--", stateDir).Output()
		return err != nil && len(bytes.TrimSpace(out)) == 0
	}, 15*time.Second, 100*time.Millisecond, "a process of %s is left", stateDir)
}

func TestHarnessWithoutJavaFailsAtOnce(t *testing.T) {
	state := t.TempDir()
	code, stderr, took := runHarness(t, 30*time.Second, state, []string{"JAVA=" + filepath.Join(state, "no-java")}, "up")
	assert.NotZero(t, code)
	assert.Contains(t, stderr, "java not found")
	assert.Less(t, took, 10*time.Second)
	requireNoBroker(t, state)
}

func TestHarnessRefusesAPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	state := t.TempDir()
	code, stderr, took := runHarness(t, 60*time.Second, state, []string{"KAFKA_PORT=" + port}, "up")
	assert.NotZero(t, code)
	assert.Contains(t, stderr, "port "+port)
	assert.Contains(t, stderr, "already in use")
	assert.Less(t, took, 30*time.Second)
	requireNoBroker(t, state)
}

func TestHarnessKillsABrokerThatIsNeverReady(t *testing.T) {
	state := t.TempDir()
	// One second is too short for a JVM broker to format, start and register.
	code, stderr, took := runHarness(t, 90*time.Second, state, []string{"KAFKA_START_TIMEOUT=1"}, "up")
	assert.NotZero(t, code)
	assert.Contains(t, strings.ToLower(stderr), "not ready")
	assert.Less(t, took, 60*time.Second)
	requireNoBroker(t, state)
	pidFile := filepath.Join(state, "node-1", "pid")
	if pid, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(pid)) > 0 {
		err := exec.Command("kill", "-0", string(bytes.TrimSpace(pid))).Run()
		assert.Error(t, err, "the broker of %s (pid %s) is still alive", pidFile, bytes.TrimSpace(pid))
	}
	// down after a failed up is harmless.
	code, stderr, _ = runHarness(t, 60*time.Second, state, nil, "down")
	assert.Zero(t, code, stderr)
}
