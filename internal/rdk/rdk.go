// Package rdk is a thin cgo binding to the librdkafka that confluent-kafka-go bundles, made for batch
// producing: one cgo call enqueues a whole batch of pointer-free records (offsets into one byte arena),
// and one cgo call drains thousands of delivery reports. It owns its own librdkafka producer handle.
//
// It declares the few librdkafka types and functions it uses itself (aiop.h) instead of including
// rdkafka.h; New checks librdkafka's major version and the layouts of the structs it shares with it.
// No Go pointer is kept by C beyond a call: a message's opaque is an integer (the caller's slot index).
package rdk

/*
#cgo CFLAGS: -O2 -Wall
#include <stdlib.h>
#include <string.h>
#include "aiop.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"unsafe"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka" // also links librdkafka's static archive
)

// SupportedMajor is the librdkafka major version whose ABI this package declares.
const SupportedMajor = 2

// Purge flags (rd_kafka_purge).
const (
	PurgeQueue       = 0x1
	PurgeInFlight    = 0x2
	PurgeNonBlocking = 0x4
)

// Event types Poll returns besides delivery reports.
const (
	EventLog   = int(C.AIOP_EVENT_LOG)
	EventError = int(C.AIOP_EVENT_ERROR)
	// EventTokenRefresh asks for a new OAUTHBEARER token (New with tokenRefresh); Str is the value of
	// sasl.oauthbearer.config. Answer with SetOAuthBearerToken or SetOAuthBearerTokenFailure.
	EventTokenRefresh = int(C.AIOP_EVENT_OAUTHBEARER_TOKEN_REFRESH)
	// EventStats is a statistics report (New with Options.Stats, and statistics.interval.ms set);
	// Data is its JSON document, copied out of librdkafka.
	EventStats = int(C.AIOP_EVENT_STATS)
)

// Report is one delivery report. Its layout is aiop_dr_t's.
type Report struct {
	Opaque    uint64 // what the message was produced with
	Offset    int64
	Timestamp int64 // ms since the epoch; -1 if librdkafka has none
	Err       int32 // librdkafka error code, 0 for delivered
	Partition int32
	TsType    int32 // 0: no timestamp, 1: CreateTime, 2: LogAppendTime
	Status    int32 // StatusNotPersisted, StatusPossiblyPersisted or StatusPersisted
}

// A message's persistence status (rd_kafka_message_status), in its Report.
const (
	StatusNotPersisted      = 0 // never sent, or the broker answered that it did not write it
	StatusPossiblyPersisted = 1 // sent, but no answer came: it may be in the log
	StatusPersisted         = 2 // written and acknowledged
)

// Timestamp types (rd_kafka_timestamp_type_t), in a Report's TsType.
const (
	TimestampCreateTime    = 1
	TimestampLogAppendTime = 2
)

// Event is an error or log event from librdkafka.
type Event struct {
	Type  int // EventLog or EventError
	Code  kafka.ErrorCode
	Fatal bool
	Level int    // log events: syslog level
	Tag   string // log events: facility
	Str   string
	Data  []byte // statistics events: the JSON document
}

// Options are New's choices of the events Poll returns besides delivery reports, errors and log lines.
type Options struct {
	// TokenRefresh: OAUTHBEARER token refresh requests (EventTokenRefresh).
	TokenRefresh bool
	// Stats: statistics reports (EventStats). Without it librdkafka makes none, whatever
	// statistics.interval.ms says.
	Stats bool
	// Partitioner is the built-in partitioner the settings name (Partitioner*), installed wrapped.
	Partitioner int
}

var abiErr = func() error {
	if C.aiop_check_abi() != 0 {
		return errors.New("rdk: rd_kafka_message_t/rd_kafka_vu_t layout differs from librdkafka's")
	}
	if unsafe.Sizeof(Report{}) != C.sizeof_aiop_dr_t {
		return errors.New("rdk: Report layout differs from aiop_dr_t")
	}
	return nil
}()

// CheckSetting reports whether librdkafka takes name=value, setting it on a scratch configuration: nil,
// or a *ConfigError whose Key is name as given (librdkafka's own text may name the property an alias
// stands for).
func CheckSetting(name, value string) error {
	if err := CheckVersion(); err != nil {
		return err
	}
	var errstr [512]C.char
	cn, cv := C.CString(name), C.CString(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	if C.aiop_check_setting(cn, cv, &errstr[0], C.size_t(len(errstr))) != C.AIOP_CONF_OK {
		return &ConfigError{Key: name, Err: kafka.NewError(kafka.ErrInvalidArg, C.GoString(&errstr[0]), false)}
	}
	return nil
}

// Version returns librdkafka's version as an int (0xMMmmrrpp) and as a string.
func Version() (int, string) {
	v := int(C.rd_kafka_version())
	return v, fmt.Sprintf("%d.%d.%d", v>>24&0xff, v>>16&0xff, v>>8&0xff)
}

// CheckVersion refuses a librdkafka whose major version is not SupportedMajor, or whose struct
// layouts differ from the declarations.
func CheckVersion() error {
	if abiErr != nil {
		return abiErr
	}
	v, s := Version()
	if v>>24 != SupportedMajor {
		return fmt.Errorf("rdk: linked librdkafka %s has major version %d; this package is written for major version %d",
			s, v>>24, SupportedMajor)
	}
	return nil
}

// Producer is a librdkafka producer handle. Produce is safe for concurrent use (each caller with its own
// Batch); Poll must be called from one goroutine at a time; Close after Poll has stopped.
type Producer struct {
	h    *C.aiop_h
	name string
	ev   C.aiop_ev_t // Poll's event scratch
}

// ConfigError is a setting librdkafka refused.
type ConfigError struct {
	Key string
	Err kafka.Error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("property %q: %v", e.Key, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// librdkafka's built-in partitioners, for New and Partition.
const (
	PartitionerNone             = int(C.AIOP_PART_NONE)
	PartitionerConsistentRandom = int(C.AIOP_PART_CONSISTENT_RANDOM)
	PartitionerMurmur2Random    = int(C.AIOP_PART_MURMUR2_RANDOM)
	PartitionerFNV1aRandom      = int(C.AIOP_PART_FNV1A_RANDOM)
)

// Partition runs librdkafka's built-in partitioner kind on a non-empty key for partitionCnt partitions
// (-1 for an empty key or a bad argument). It is librdkafka's own code: the reference the producer's
// Go partitioners are tested against.
func Partition(kind int, key []byte, partitionCnt int32) int32 {
	if len(key) == 0 {
		return -1
	}
	return int32(C.aiop_partition(C.int(kind), unsafe.Pointer(&key[0]), C.size_t(len(key)), C.int32_t(partitionCnt)))
}

// New creates a producer from the settings kv (name, value pairs, in order). Delivery reports, errors
// and log lines (log.queue=true) all arrive through Poll, and so do the events opts asks for.
//
// opts.Partitioner is PartitionerNone, or the built-in partitioner kv configures
// (PartitionerConsistentRandom, PartitionerMurmur2Random or PartitionerFNV1aRandom; others are taken as
// none): New installs it wrapped, so that Produce learns the partition count librdkafka gave it. The wrapper is librdkafka's partitioner to the letter except in one case: with
// consistent_random, a message whose key is empty (not null) gets a random partition per message
// instead of the sticky one (librdkafka recognizes consistent_random by its address).
func New(kv [][2]string, opts Options) (*Producer, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	errstr := (*C.char)(C.malloc(512))
	defer C.free(unsafe.Pointer(errstr))
	conf := C.rd_kafka_conf_new()
	set := func(k, v string) error {
		ck, cv := C.CString(k), C.CString(v)
		defer C.free(unsafe.Pointer(ck))
		defer C.free(unsafe.Pointer(cv))
		if C.rd_kafka_conf_set(conf, ck, cv, errstr, 512) != C.AIOP_CONF_OK {
			return &ConfigError{Key: k, Err: kafka.NewError(kafka.ErrInvalidArg, C.GoString(errstr), false)}
		}
		return nil
	}
	for _, p := range kv {
		if err := set(p[0], p[1]); err != nil {
			C.rd_kafka_conf_destroy(conf)
			return nil, err
		}
	}
	if err := set("log.queue", "true"); err != nil {
		C.rd_kafka_conf_destroy(conf)
		return nil, err
	}
	refresh, stats := C.int(0), C.int(0)
	if opts.TokenRefresh {
		refresh = 1
	}
	if opts.Stats {
		stats = 1
	}
	h := C.aiop_open(conf, refresh, stats, C.int(opts.Partitioner), errstr, 512) // takes conf
	if h == nil {
		return nil, kafka.NewError(kafka.ErrInvalidArg, C.GoString(errstr), false)
	}
	return &Producer{h: h, name: C.GoString(C.aiop_name(h))}, nil
}

// Name is the client instance's name (rd_kafka_name).
func (p *Producer) Name() string { return p.name }

// PinMin is the size from which a value is passed to C by (pinned) pointer instead of being copied
// into the Batch's arena.
const PinMin = 4096

// Topic is a librdkafka topic handle (rd_kafka_topic_new), valid until DestroyTopic. Creating one
// searches every topic librdkafka knows, so a producer keeps its handles instead of making one per
// call.
type Topic struct {
	rkt *C.aiop_topic_t
}

// Topic returns a handle on topic name, made with the producer's default topic configuration (and so
// its partitioner). The caller destroys it with DestroyTopic, before Close. librdkafka keeps what it
// knows of the topic (a few KiB) until Close, handle or not.
func (p *Producer) Topic(name string) (Topic, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	rkt := C.aiop_topic(p.h, cn)
	if rkt == nil {
		return Topic{}, kafka.NewError(kafka.ErrInvalidArg, fmt.Sprintf("librdkafka made no handle for topic %q", name), false)
	}
	return Topic{rkt: rkt}, nil
}

// DestroyTopic drops a handle Topic returned (rd_kafka_topic_destroy). Messages already produced to the
// topic are not affected.
func (p *Producer) DestroyTopic(t Topic) {
	if t.rkt != nil {
		C.rd_kafka_topic_destroy(t.rkt)
	}
}

// Batch is a reusable set of messages for one Produce call: records of offsets into one byte arena, so
// nothing passed to C holds a Go pointer but large values, which are pinned (runtime.Pinner) until
// Reset. Not safe for concurrent use.
type Batch struct {
	pins  runtime.Pinner // large values, passed by pointer until Reset
	recs  []C.aiop_rec_t
	hdrs  []C.aiop_hdr_t
	arena []byte
	order []int32
	parts []int32
	perr  C.aiop_perr_t
}

// Reset empties b, keeping its memory, and unpins its large values. Call it before b is dropped or
// pooled: a Batch that still pins values must not be garbage collected.
func (b *Batch) Reset() {
	b.pins.Unpin()
	b.recs, b.hdrs, b.arena = b.recs[:0], b.hdrs[:0], b.arena[:0]
}

// Len is the number of messages in b.
func (b *Batch) Len() int { return len(b.recs) }

// Opaque returns the opaque of the message Add added i-th.
func (b *Batch) Opaque(i int) uint64 { return uint64(b.recs[i].opaque) }

// bytes appends v to the arena and returns its offset and length, -1 for nil.
func (b *Batch) bytes(v []byte) (C.int64_t, C.int64_t) {
	if v == nil {
		return 0, -1
	}
	off := len(b.arena)
	b.arena = append(b.arena, v...)
	return C.int64_t(off), C.int64_t(len(v))
}

func (b *Batch) cstr(s string) C.int64_t {
	off := len(b.arena)
	b.arena = append(b.arena, s...)
	b.arena = append(b.arena, 0)
	return C.int64_t(off)
}

// Add appends a message to topic t. partition is kafka.PartitionAny for the partitioner's choice; tsMs
// is the CreateTime in milliseconds (0: librdkafka's now); opaque comes back in its Report. Messages of
// one topic must be added one after the other: Produce treats each run of one topic as a unit.
func (b *Batch) Add(t Topic, key, value []byte, hdrs []kafka.Header, partition int32, tsMs int64, opaque uint64) {
	var r C.aiop_rec_t
	r.rkt = C.uint64_t(uintptr(unsafe.Pointer(t.rkt)))
	r.key_off, r.key_len = b.bytes(key)
	if len(value) >= PinMin {
		// Copying a large value into the arena, only for librdkafka to copy it again, costs more than
		// pinning it for the duration of the call.
		b.pins.Pin(&value[0])
		r.val_addr = C.uintptr_t(uintptr(unsafe.Pointer(&value[0])))
		r.val_len = C.int64_t(len(value))
	} else {
		r.val_off, r.val_len = b.bytes(value)
	}
	r.timestamp = C.int64_t(tsMs)
	r.opaque = C.uint64_t(opaque)
	r.partition = C.int32_t(partition)
	r.hdr_first = C.int32_t(len(b.hdrs))
	r.hdr_count = C.int32_t(len(hdrs))
	for _, h := range hdrs {
		var ch C.aiop_hdr_t
		ch.name_off = b.cstr(h.Key)
		ch.val_off, ch.val_len = b.bytes(h.Value)
		b.hdrs = append(b.hdrs, ch)
	}
	b.recs = append(b.recs, r)
}

// ErrQueueFull is what Produce returns when librdkafka's queue is full.
var ErrQueueFull = kafka.NewError(kafka.ErrQueueFull, "Local: Queue full", false)

// Produce enqueues b's messages in one cgo call, copying their bytes (RD_KAFKA_MSG_F_COPY), each topic
// run's messages grouped by partition, each partition's in the order they were added (see aiop.c).
// With a partitioner that New installed, a keyed message without a partition is placed by librdkafka's
// own partitioner function, with the partition count librdkafka gives it for the run's first one.
// It returns how many it enqueued, n, and, if it stopped early, why: ErrQueueFull (the rest may be
// offered again later) or the kafka.Error of the message it refused, which is the n-th in Order. Order
// then says in which order it took (and would have taken) the messages.
func (p *Producer) Produce(b *Batch) (int, error) {
	if len(b.recs) == 0 {
		return 0, nil
	}
	var hdrs *C.aiop_hdr_t
	if len(b.hdrs) > 0 {
		hdrs = &b.hdrs[0]
	}
	if cap(b.order) < len(b.recs) {
		b.order = make([]int32, len(b.recs))
		b.parts = make([]int32, len(b.recs))
	}
	b.order, b.parts = b.order[:len(b.recs)], b.parts[:len(b.recs)]
	if len(b.arena) == 0 {
		b.arena = append(b.arena, 0) // a valid address for the call
	}
	n := int(C.aiop_produce(p.h, &b.recs[0], C.size_t(len(b.recs)), (*C.char)(unsafe.Pointer(&b.arena[0])), hdrs,
		(*C.int32_t)(unsafe.Pointer(&b.order[0])), (*C.int32_t)(unsafe.Pointer(&b.parts[0])), &b.perr))
	switch code := kafka.ErrorCode(b.perr.code); {
	case code == 0:
		return n, nil
	case code == kafka.ErrQueueFull:
		return n, ErrQueueFull
	default:
		return n, kafka.NewError(code, C.GoString(&b.perr.str[0]), b.perr.fatal != 0)
	}
}

// Order returns, after Produce, the indexes (in the order of Add) of b's messages in the order Produce
// enqueued them: its first n were enqueued, the rest are to be offered again in that order.
func (b *Batch) Order() []int32 { return b.order }

// Partitions returns, after Produce, the partition of each message (in the order of Add) that Produce
// knows: the one it was given, or the one a partitioner placed it in; -1 where librdkafka's sticky
// partitioner decides later (a null key), or for a message not enqueued.
func (b *Batch) Partitions() []int32 { return b.parts }

// Partitioned is how many keyed messages without a partition the last Produce placed itself.
func (b *Batch) Partitioned() int { return int(b.perr.partitioned) }

// Poll waits up to timeoutMs for librdkafka's events and returns the delivery reports it copied into
// out (up to len(out), in librdkafka's order), or, with n == 0, one other Event. Reports that came
// before an event are returned first. It returns (0, nil) on timeout or after Wake.
func (p *Producer) Poll(timeoutMs int, out []Report) (int, *Event) {
	n := int(C.aiop_poll(p.h, C.int(timeoutMs), (*C.aiop_dr_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &p.ev))
	if n > 0 || p.ev._type == 0 {
		return n, nil
	}
	ev := &Event{Type: int(p.ev._type), Code: kafka.ErrorCode(p.ev.code), Fatal: p.ev.fatal != 0, Level: int(p.ev.level)}
	if p.ev.fac != nil {
		ev.Tag = C.GoString(p.ev.fac)
	}
	switch {
	case ev.Fatal:
		ev.Str = C.GoString(&p.ev.fatal_str[0])
	case ev.Type == EventStats && p.ev.str != nil:
		ev.Data = C.GoBytes(unsafe.Pointer(p.ev.str), C.int(C.strlen(p.ev.str)))
	case p.ev.str != nil:
		ev.Str = C.GoString(p.ev.str)
	}
	C.aiop_release_event(p.h)
	return 0, ev
}

// Drained reports whether Poll has returned every event librdkafka queued so far: it holds none back
// and the queue is empty. It must be called by Poll's caller, between calls.
func (p *Producer) Drained() bool { return C.aiop_drained(p.h) != 0 }

// Wake makes a Poll in progress (or the next one) return at once.
func (p *Producer) Wake() { C.aiop_wake(p.h) }

// Purge makes librdkafka fail the messages it holds (rd_kafka_purge with flags).
func (p *Producer) Purge(flags int) error {
	if code := kafka.ErrorCode(C.aiop_purge(p.h, C.int(flags))); code != 0 {
		return kafka.NewError(code, "", false)
	}
	return nil
}

// OutqLen is rd_kafka_outq_len: messages and requests librdkafka holds, plus undrained events.
func (p *Producer) OutqLen() int { return int(C.aiop_outq_len(p.h)) }

// FatalError returns the fatal error librdkafka raised, and false if it raised none.
func (p *Producer) FatalError() (kafka.Error, bool) {
	var buf [512]C.char
	code := kafka.ErrorCode(C.aiop_fatal_error(p.h, &buf[0], C.size_t(len(buf))))
	if code == kafka.ErrNoError {
		return kafka.Error{}, false
	}
	return kafka.NewError(code, C.GoString(&buf[0]), true), true
}

// TestFatalError raises a fatal error of code for tests (rd_kafka_test_fatal_error).
func (p *Producer) TestFatalError(code kafka.ErrorCode, reason string) kafka.ErrorCode {
	cr := C.CString(reason)
	defer C.free(unsafe.Pointer(cr))
	return kafka.ErrorCode(C.aiop_test_fatal(p.h, C.int(code), cr))
}

// Flush calls rd_kafka_flush for up to timeoutMs: while it runs, librdkafka sends what it holds at once,
// without waiting for linger.ms. Delivery reports still arrive through Poll (librdkafka only waits here
// for its message count to drop to zero). It reports whether that happened.
func (p *Producer) Flush(timeoutMs int) bool { return C.aiop_flush(p.h, C.int(timeoutMs)) == 0 }

// TopicLeaders requests t's metadata from the cluster (rd_kafka_metadata for that topic: one request,
// waiting up to timeoutMs) and returns the leader of each of its partitions, -1 for one without a
// leader. librdkafka updates its own view of the topic from the answer too.
func (p *Producer) TopicLeaders(t Topic, timeoutMs int) ([]int32, error) {
	leaders := make([]int32, 64)
	for {
		var cnt C.int32_t
		code := C.aiop_topic_leaders(p.h, t.rkt, C.int(timeoutMs), (*C.int32_t)(unsafe.Pointer(&leaders[0])), C.int(len(leaders)), &cnt)
		if code != 0 {
			return nil, kafka.NewError(kafka.ErrorCode(code), "", false)
		}
		if int(cnt) <= len(leaders) {
			return leaders[:cnt], nil
		}
		leaders = make([]int32, cnt)
	}
}

// MetadataOrigin requests metadata for the locally known topics (rd_kafka_metadata), waiting up to
// timeoutMs for a broker connection to be up and for its answer, and returns the node id of the broker
// that answered: -1 for a bootstrap broker (one of bootstrap.servers, before librdkafka learned the
// cluster's brokers), else a broker the cluster named. It must not be called once Close has begun.
func (p *Producer) MetadataOrigin(timeoutMs int) (int32, kafka.ErrorCode) {
	var origin C.int32_t
	err := C.aiop_metadata_origin(p.h, C.int(timeoutMs), &origin)
	return int32(origin), kafka.ErrorCode(err)
}

// Close destroys the handle. Poll must have returned for good; Close is called once.
func (p *Producer) Close() {
	if p.h != nil {
		C.aiop_close(p.h)
		p.h = nil
	}
}

// Transactional operations (Txn).
const (
	TxnInit   = int(C.AIOP_TXN_INIT)
	TxnBegin  = int(C.AIOP_TXN_BEGIN)
	TxnCommit = int(C.AIOP_TXN_COMMIT)
	TxnAbort  = int(C.AIOP_TXN_ABORT)
)

// TxnError is the error of a transactional call (rd_kafka_error_t), with librdkafka's verdict on what
// the application may do next.
type TxnError struct {
	Code      kafka.ErrorCode
	Str       string
	Fatal     bool // the producer is unusable
	Retriable bool // the same call may be made again
	Abortable bool // the transaction must be aborted (rd_kafka_error_txn_requires_abort)
}

func (e *TxnError) Error() string { return e.Str }

func txnError(e *C.aiop_txnerr_t) *TxnError {
	if e.code == 0 {
		return nil
	}
	return &TxnError{Code: kafka.ErrorCode(e.code), Str: C.GoString(&e.str[0]), Fatal: e.fatal != 0,
		Retriable: e.retriable != 0, Abortable: e.abortable != 0}
}

// Txn runs one transactional operation (TxnInit, TxnBegin, TxnCommit, TxnAbort) for up to timeoutMs
// (begin takes none) and returns its error, nil on success. A call that timed out is retriable, and
// librdkafka resumes it when it is made again.
func (p *Producer) Txn(op, timeoutMs int) *TxnError {
	var out C.aiop_txnerr_t
	C.aiop_txn(p.h, C.int(op), C.int(timeoutMs), &out)
	return txnError(&out)
}

// SendOffsets adds the consumer offsets of offsets (their Error fields are ignored) and the consumer
// group cgm to the current transaction (rd_kafka_send_offsets_to_transaction).
func (p *Producer) SendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, timeoutMs int) *TxnError {
	md, err := GroupMetadataBytes(cgm)
	if err != nil {
		return &TxnError{Code: kafka.ErrInvalidArg, Str: err.Error()}
	}
	var arena []byte
	offs := make([]C.aiop_offset_t, len(offsets))
	for i, tp := range offsets {
		if tp.Topic == nil {
			return &TxnError{Code: kafka.ErrInvalidArg, Str: fmt.Sprintf("offset %d has no topic", i)}
		}
		offs[i].topic_off = C.int64_t(len(arena))
		arena = append(append(arena, *tp.Topic...), 0)
		offs[i].partition = C.int32_t(tp.Partition)
		offs[i].offset = C.int64_t(tp.Offset)
		offs[i].leader_epoch = -1
		if tp.LeaderEpoch != nil {
			offs[i].leader_epoch = C.int32_t(*tp.LeaderEpoch)
		}
	}
	arena = append(arena, 0) // never empty
	var first *C.aiop_offset_t
	if len(offs) > 0 {
		first = &offs[0]
	}
	var out C.aiop_txnerr_t
	C.aiop_send_offsets(p.h, first, C.size_t(len(offs)), (*C.char)(unsafe.Pointer(&arena[0])),
		unsafe.Pointer(&md[0]), C.size_t(len(md)), C.int(timeoutMs), &out)
	return txnError(&out)
}

// GroupMetadataBytes returns cgm in librdkafka's serialized form (rd_kafka_consumer_group_metadata_write),
// which kafka.ConsumerGroupMetadata keeps in an unexported field: read by reflection, failing if it is
// not there.
func GroupMetadataBytes(cgm *kafka.ConsumerGroupMetadata) ([]byte, error) {
	if cgm == nil {
		return nil, errors.New("rdk: nil kafka.ConsumerGroupMetadata")
	}
	f := reflect.ValueOf(cgm).Elem().FieldByName("serialized")
	if f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Uint8 {
		return nil, errors.New("rdk: kafka.ConsumerGroupMetadata has no serialized bytes: confluent-kafka-go's layout changed")
	}
	if f.Len() == 0 {
		return nil, errors.New("rdk: empty kafka.ConsumerGroupMetadata")
	}
	return f.Bytes(), nil
}

// GroupID returns the group id of cgm, read from its serialized form (GroupMetadataBytes): librdkafka
// writes the magic "CGMDv2:", the generation id (4 bytes), then the group id, NUL-terminated
// (rd_kafka_consumer_group_metadata_write). It fails for another layout instead of guessing.
func GroupID(cgm *kafka.ConsumerGroupMetadata) (string, error) {
	md, err := GroupMetadataBytes(cgm)
	if err != nil {
		return "", err
	}
	const magic, head = "CGMDv2:", len("CGMDv2:") + 4
	if len(md) <= head || string(md[:len(magic)]) != magic {
		return "", fmt.Errorf("rdk: consumer group metadata in an unknown layout (%q...)", md[:min(len(md), len(magic))])
	}
	end := bytes.IndexByte(md[head:], 0)
	if end < 0 {
		return "", errors.New("rdk: consumer group metadata without a NUL-terminated group id")
	}
	return string(md[head : head+end]), nil
}

// SetOAuthBearerToken hands librdkafka an OAUTHBEARER token (rd_kafka_oauthbearer_set_token).
func (p *Producer) SetOAuthBearerToken(tok kafka.OAuthBearerToken) error {
	var errstr [512]C.char
	value, principal := C.CString(tok.TokenValue), C.CString(tok.Principal)
	defer C.free(unsafe.Pointer(value))
	defer C.free(unsafe.Pointer(principal))
	exts := make([]*C.char, 0, 2*len(tok.Extensions))
	for k, v := range tok.Extensions {
		exts = append(exts, C.CString(k), C.CString(v))
	}
	defer func() {
		for _, e := range exts {
			C.free(unsafe.Pointer(e))
		}
	}()
	var first **C.char
	if len(exts) > 0 {
		// A C array of C pointers: allocated by C, so that no Go memory holding pointers reaches C.
		arr := (**C.char)(C.malloc(C.size_t(len(exts)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(arr))
		copy(unsafe.Slice(arr, len(exts)), exts)
		first = arr
	}
	code := C.aiop_set_token(p.h, value, C.int64_t(tok.Expiration.UnixMilli()), principal, first,
		C.size_t(len(exts)), &errstr[0], C.size_t(len(errstr)))
	if code != 0 {
		return kafka.NewError(kafka.ErrorCode(code), C.GoString(&errstr[0]), false)
	}
	return nil
}

// SetOAuthBearerTokenFailure tells librdkafka that no token could be had, and why
// (rd_kafka_oauthbearer_set_token_failure); it asks again later.
func (p *Producer) SetOAuthBearerTokenFailure(reason string) error {
	cr := C.CString(reason)
	defer C.free(unsafe.Pointer(cr))
	if code := C.aiop_set_token_failure(p.h, cr); code != 0 {
		return kafka.NewError(kafka.ErrorCode(code), "", false)
	}
	return nil
}

// SetSaslCredentials replaces the SASL PLAIN/SCRAM username and password; new connections use them
// (rd_kafka_sasl_set_credentials).
func (p *Producer) SetSaslCredentials(username, password string) error {
	cu, cp := C.CString(username), C.CString(password)
	defer C.free(unsafe.Pointer(cu))
	defer C.free(unsafe.Pointer(cp))
	var out C.aiop_txnerr_t
	C.aiop_set_credentials(p.h, cu, cp, &out)
	if te := txnError(&out); te != nil {
		return kafka.NewError(te.Code, te.Str, te.Fatal)
	}
	return nil
}
