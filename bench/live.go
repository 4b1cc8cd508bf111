package main

// liveChild is a child process the harness talks to while it runs (the stuck and churn cells): lines to
// its stdin, its stdout lines as they come. The stdout reader never blocks the child: it keeps what
// the harness has not taken yet.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

type liveChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	errb  lockedBuffer

	mu     sync.Mutex
	lines  []string // stdout lines not taken yet
	eof    bool
	notify chan struct{} // cap 1: a line came, or stdout ended
	exited chan error    // the exit, once stdout ended

	waited  bool
	exitErr error
}

func startLive(name string, args ...string) (*liveChild, error) {
	c := &liveChild{cmd: exec.Command(name, args...), notify: make(chan struct{}, 1), exited: make(chan error, 1)}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stderr = &c.errb
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	wake := func() {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			wake()
		}
		c.mu.Lock()
		c.eof = true
		c.mu.Unlock()
		wake()
		c.exited <- c.cmd.Wait()
	}()
	return c, nil
}

// send writes one line to the child's stdin.
func (c *liveChild) send(format string, args ...any) error {
	_, err := fmt.Fprintf(c.stdin, format+"\n", args...)
	return err
}

// take returns the stdout lines that came since the last take, waiting up to d for one; eof once
// stdout has ended and every line was taken.
func (c *liveChild) take(d time.Duration) (lines []string, eof bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		lines, eof = c.lines, c.eof
		c.lines = nil
		c.mu.Unlock()
		if len(lines) > 0 || eof {
			return lines, eof
		}
		select {
		case <-c.notify:
		case <-timer.C:
			return nil, false
		}
	}
}

// wait closes the child's stdin and waits up to d for it to end (then kills it); the exit error.
func (c *liveChild) wait(d time.Duration) error {
	if c.waited {
		return c.exitErr
	}
	_ = c.stdin.Close()
	select {
	case c.exitErr = <-c.exited:
	case <-time.After(d):
		_ = c.cmd.Process.Kill()
		c.exitErr = fmt.Errorf("did not end within %v: killed (%v)", d, <-c.exited)
	}
	c.waited = true
	if c.exitErr != nil {
		c.exitErr = fmt.Errorf("%v: %s", c.exitErr, lastLines(c.errb.String(), 5))
	}
	return c.exitErr
}

// cpu is the ended child's user+sys time.
func (c *liveChild) cpu() time.Duration {
	if ps := c.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return 0
}

// lockedBuffer is a bytes.Buffer that a child's stderr may write while the harness reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scanResult reads one "RESULT <ns> <mallocs>" or "STAT <name> <value>" line of a child into r; true
// for a RESULT line.
func scanResult(r *result, line string) bool {
	var ns, m int64
	if n, _ := fmt.Sscanf(line, "RESULT %d %d", &ns, &m); n == 2 {
		r.d, r.allocs = time.Duration(ns), float64(m)
		return true
	}
	var name string
	var v float64
	if n, _ := fmt.Sscanf(line, "STAT %s %g", &name, &v); n == 2 && !strings.ContainsAny(name, " \t") {
		if r.stats == nil {
			r.stats = map[string]float64{}
		}
		r.stats[name] = v
	}
	return false
}
