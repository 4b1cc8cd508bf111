package rdk

/*
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// aiop_tune_malloc sets glibc's M_TRIM_THRESHOLD and M_TOP_PAD. It returns 0, -1 if mallopt refused a
// value, or -2 if the C library is not glibc.
static int aiop_tune_malloc(long trim_threshold, long top_pad) {
#ifdef __GLIBC__
	if (mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) != 1)
		return -1;
	if (mallopt(M_TOP_PAD, (int)top_pad) != 1)
		return -1;
	return 0;
#else
	(void)trim_threshold;
	(void)top_pad;
	return -2;
#endif
}

// aiop_malloc_burst mallocs n blocks of size bytes, writes them, and frees them all: what librdkafka
// does with a burst of messages. For the tests of TuneMalloc (cgo is not allowed in _test.go files).
static int aiop_malloc_burst(size_t n, size_t size) {
	void **blocks = calloc(n, sizeof(void *));
	if (!blocks)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(blocks[i] = malloc(size))) {
			rc = -1;
			break;
		}
		memset(blocks[i], 1, size);
	}
	for (size_t i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
)

// TuneMalloc sets glibc malloc's trim threshold and top pad (mallopt M_TRIM_THRESHOLD and M_TOP_PAD,
// the same as GLIBC_TUNABLES glibc.malloc.trim_threshold and glibc.malloc.top_pad) for the whole
// process. It returns an error wrapping errors.ErrUnsupported when the C library is not glibc.
func TuneMalloc(trimThreshold, topPad int) error {
	if trimThreshold < 0 || topPad < 0 || trimThreshold > math.MaxInt32 || topPad > math.MaxInt32 {
		return fmt.Errorf("malloc tuning: values must be in [0, %d] bytes: trim threshold %d, top pad %d",
			math.MaxInt32, trimThreshold, topPad)
	}
	switch C.aiop_tune_malloc(C.long(trimThreshold), C.long(topPad)) {
	case 0:
		return nil
	case -2:
		return fmt.Errorf("malloc tuning: the C library is not glibc: %w", errors.ErrUnsupported)
	default:
		return fmt.Errorf("malloc tuning: mallopt refused trim threshold %d or top pad %d", trimThreshold, topPad)
	}
}

// mallocBurst has C malloc n blocks of size bytes, write them and free them, in one call (on one
// thread, so in one malloc arena). Only tests use it.
func mallocBurst(n, size int) error {
	if C.aiop_malloc_burst(C.size_t(n), C.size_t(size)) != 0 {
		return errors.New("malloc failed")
	}
	return nil
}
