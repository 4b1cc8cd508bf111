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

// cLoopMulti runs the C producer loop round-robin over topics, with keys (nkeys keys of keyLen bytes
// each, one after the other in keys; none when nkeys is 0): a warm-up pass of warm messages, then the
// measured pass of count, whose duration it returns. A non-nil lat (count entries) gets each measured
// message's produce-to-delivery time in nanoseconds.
func cLoopMulti(settings [][2]string, topics []string, keys []byte, keyLen, nkeys, warm, count int, value []byte, lat []int64) (time.Duration, error) {
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
	ct := C.malloc(C.size_t(len(topics)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(ct)
	tps := unsafe.Slice((**C.char)(ct), len(topics))
	for i, t := range topics {
		tps[i] = C.CString(t)
	}
	defer func() {
		for _, p := range tps {
			C.free(unsafe.Pointer(p))
		}
	}()
	ck := C.CBytes(append(keys[:len(keys):len(keys)], 0)) // never empty
	defer C.free(ck)
	errstr := (*C.char)(C.malloc(512))
	defer C.free(unsafe.Pointer(errstr))
	cv := C.CBytes(append(value[:len(value):len(value)], 0))
	defer C.free(cv)
	var clat *C.int64_t
	if lat != nil {
		if len(lat) < count {
			return 0, errors.New("cLoopMulti: lat shorter than count")
		}
		clat = (*C.int64_t)(unsafe.Pointer(&lat[0]))
	}
	ns := C.aiopb_cloop_multi((**C.char)(kv), C.int(len(settings)), (**C.char)(ct), C.int(len(topics)),
		(*C.char)(ck), C.int(keyLen), C.int64_t(nkeys), C.int64_t(warm), C.int64_t(count),
		(*C.char)(cv), C.int(len(value)), clat, errstr, 512)
	if ns < 0 {
		return 0, errors.New(C.GoString(errstr))
	}
	return time.Duration(ns), nil
}
