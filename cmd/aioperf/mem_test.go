package main

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

const sampleStatus = `Name:	aioperf
Umask:	0022
State:	R (running)
Tgid:	4242
Pid:	4242
VmPeak:	 1300000 kB
VmSize:	 1250000 kB
VmLck:	       0 kB
VmHWM:	  126362 kB
VmRSS:	  122982 kB
RssAnon:	  100000 kB
VmData:	  300000 kB
Threads:	12
`

func TestParseProcStatusReadsPeakAndCurrentRSSInBytes(t *testing.T) {
	st, err := parseProcStatus(strings.NewReader(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	if st.VmHWM != 126362*1024 || st.VmRSS != 122982*1024 {
		t.Fatalf("got %+v, want VmHWM %d and VmRSS %d", st, 126362*1024, 122982*1024)
	}
	line := memoryLine(st, nil, &runtime.MemStats{HeapInuse: 40 << 20, Sys: 60 << 20})
	want := "memory: peak RSS 123.4 MiB, RSS at end 120.1 MiB, Go heap in use 40.0 MiB, Go runtime total from OS 60.0 MiB"
	if line != want {
		t.Fatalf("memoryLine =\n%q, want\n%q", line, want)
	}
}

func TestParseProcStatusRejectsMissingOrMalformedFields(t *testing.T) {
	for name, text := range map[string]string{
		"no VmHWM":     "VmRSS:\t 10 kB\n",
		"no VmRSS":     "VmHWM:\t 10 kB\n",
		"empty":        "",
		"not a number": "VmHWM:\t ten kB\nVmRSS:\t 10 kB\n",
		"no unit":      "VmHWM:\t 10\nVmRSS:\t 10 kB\n",
	} {
		if st, err := parseProcStatus(strings.NewReader(text)); err == nil {
			t.Errorf("%s: got %+v and no error", name, st)
		}
	}
}

func TestMemoryLineSaysNAWithoutProc(t *testing.T) {
	line := memoryLine(procStatus{}, errors.New("no /proc"), &runtime.MemStats{HeapInuse: 1 << 20, Sys: 2 << 20})
	want := "memory: peak RSS n/a, RSS at end n/a, Go heap in use 1.0 MiB, Go runtime total from OS 2.0 MiB"
	if line != want {
		t.Fatalf("memoryLine =\n%q, want\n%q", line, want)
	}
}

func TestReadProcStatusOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc here")
	}
	st, err := readProcStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.VmRSS <= 0 || st.VmHWM < st.VmRSS {
		t.Fatalf("implausible %+v: want 0 < VmRSS <= VmHWM", st)
	}
	if s := rssMiB(); s == "n/a" {
		t.Fatal("rssMiB = n/a with /proc present")
	}
}
