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
