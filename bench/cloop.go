package main

/*
#cgo CFLAGS: -O2 -I${SRCDIR}/../internal/rdk
#include <stdlib.h>
#include "cloop.h"
*/
import "C"

import (
	"errors"
	"time"
	"unsafe"

	_ "github.com/confluentinc/confluent-kafka-go/v2/kafka" // links librdkafka's static archive
)

// cLoop runs the C producer loop: count messages of value, one goroutine, no Go in the loop.
func cLoop(settings [][2]string, topic string, count int, value []byte) (time.Duration, error) {
	kv := C.malloc(C.size_t(len(settings)*2) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(kv)
	ptrs := unsafe.Slice((**C.char)(kv), len(settings)*2)
	for i, s := range settings {
		ptrs[2*i], ptrs[2*i+1] = C.CString(s[0]), C.CString(s[1])
	}
	defer func() {
		for _, p := range ptrs {
			C.free(unsafe.Pointer(p))
		}
	}()
	ct := C.CString(topic)
	defer C.free(unsafe.Pointer(ct))
	errstr := (*C.char)(C.malloc(512))
	defer C.free(unsafe.Pointer(errstr))
	cv := C.CBytes(append(value[:len(value):len(value)], 0)) // never empty
	defer C.free(cv)
	ns := C.aiopb_cloop((**C.char)(kv), C.int(len(settings)), ct, C.int64_t(count), (*C.char)(cv), C.int(len(value)), errstr, 512)
	if ns < 0 {
		return 0, errors.New(C.GoString(errstr))
	}
	return time.Duration(ns), nil
}
