package main

/*
#include <malloc.h>

// aiopb_malloc_in_use is what glibc malloc has handed out and not had back, over all arenas: the bytes
// in use in its heaps (uordblks) plus those in blocks it mmapped on their own (hblkhd).
static size_t aiopb_malloc_in_use(void) {
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}
*/
import "C"

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// memSnapshot is a process's memory at one moment: Go's heap in use after a GC, C's heap in use
// (glibc mallinfo2), and the resident set.
type memSnapshot struct {
	goHeap, cHeap, rss uint64
}

// takeMem collects garbage and then reads the three figures.
func takeMem() memSnapshot {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{goHeap: ms.HeapInuse, cHeap: uint64(C.aiopb_malloc_in_use()), rss: rssBytes()}
}

// peakRSSBytes is the process's own resident high-water mark (VmHWM in /proc/self/status; 0 where
// there is none). Unlike wait4's ru_maxrss it does not count the parent: Linux carries the pre-exec
// memory's high-water mark over exec into ru_maxrss, and Go starts a child with vfork semantics (the
// child runs in the parent's memory until exec), so a child's ru_maxrss is at least the parent's peak
// RSS when it started the child.
func peakRSSBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// rssBytes is the process's resident set now, from /proc/self/statm (0 where there is none).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
