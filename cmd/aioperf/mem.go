package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// procStatus is what aioperf reads from /proc/self/status, in bytes.
type procStatus struct {
	VmHWM int64 // peak resident set size
	VmRSS int64 // resident set size now
}

// parseProcStatus reads the VmHWM and VmRSS lines ("VmRSS:\t  123456 kB") of a /proc/<pid>/status
// text. It fails if either is missing or malformed.
func parseProcStatus(r io.Reader) (procStatus, error) {
	var st procStatus
	var haveHWM, haveRSS bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmHWM":
			dst, haveHWM = &st.VmHWM, true
		case "VmRSS":
			dst, haveRSS = &st.VmRSS, true
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return procStatus{}, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return procStatus{}, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		*dst = kb * 1024
	}
	if err := sc.Err(); err != nil {
		return procStatus{}, err
	}
	if !haveHWM || !haveRSS {
		return procStatus{}, fmt.Errorf("VmHWM or VmRSS missing")
	}
	return st, nil
}

// readProcStatus reads /proc/self/status; it fails where there is no /proc (not Linux).
func readProcStatus() (procStatus, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	return parseProcStatus(f)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rssMiB is the current RSS in MiB formatted with one decimal, or "n/a".
func rssMiB() string {
	st, err := readProcStatus()
	if err != nil {
		return "n/a"
	}
	return strconv.FormatFloat(mib(st.VmRSS), 'f', 1, 64)
}

// memoryLine is the final report line: peak and current RSS from /proc/self/status ("n/a" where
// unavailable) and the Go heap in use and obtained from the OS (runtime.MemStats).
func memoryLine(st procStatus, stErr error, ms *runtime.MemStats) string {
	peak, now := "n/a", "n/a"
	if stErr == nil {
		peak = fmt.Sprintf("%.1f MiB", mib(st.VmHWM))
		now = fmt.Sprintf("%.1f MiB", mib(st.VmRSS))
	}
	return fmt.Sprintf("memory: peak RSS %s, RSS at end %s, Go heap in use %.1f MiB, Go runtime total from OS %.1f MiB",
		peak, now, mib(int64(ms.HeapInuse)), mib(int64(ms.Sys)))
}
