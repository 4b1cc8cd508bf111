package aioproducer

import "github.com/seed-f937cf20/aioproducer/internal/rdk"

// MallocTuning is how much freed memory glibc's malloc keeps instead of returning it to the system.
// librdkafka allocates every message it queues (its header and a copy of its key and value, in one
// block) on the thread that enqueues it, and frees it on another once delivered. Between bursts
// glibc trims the enqueueing thread's heap back and the next burst faults the pages in again: at 1 KB
// values that is a fifth of the producer's CPU on a real broker (BENCHMARKS.md, "Where the time goes on
// real Kafka"). Keeping the memory instead is what TuneMalloc is for.
type MallocTuning struct {
	// TrimThreshold is how many free bytes at the top of a heap malloc keeps before it returns any to
	// the system (mallopt M_TRIM_THRESHOLD; glibc's default is 128 KiB, raised as large blocks are freed).
	TrimThreshold int
	// TopPad is how many bytes more than asked for malloc takes each time it grows a heap
	// (mallopt M_TOP_PAD; glibc's default is 128 KiB).
	TopPad int
}

// KeepMallocMemory is the tuning measured in BENCHMARKS.md ("Keeping librdkafka's message memory"):
// malloc keeps up to 256 MiB free and grows its heaps 64 MiB at a time.
var KeepMallocMemory = MallocTuning{TrimThreshold: 256 << 20, TopPad: 64 << 20}

// TuneMalloc sets glibc malloc's trim threshold and top pad for the whole process: every C library and
// cgo package in it, not only this producer (Go's own heap does not use malloc). Call it once, early in
// main, before producers start; it is opt-in because it trades memory for CPU process-wide: the process
// keeps up to TrimThreshold bytes of freed C memory resident. The environment variable
// GLIBC_TUNABLES=glibc.malloc.trim_threshold=N:glibc.malloc.top_pad=M does the same without code.
//
// It returns an error wrapping errors.ErrUnsupported when the C library is not glibc (musl, macOS), and
// an error for a value outside [0, 2^31-1].
func TuneMalloc(t MallocTuning) error { return rdk.TuneMalloc(t.TrimThreshold, t.TopPad) }
