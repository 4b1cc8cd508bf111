package aioproducer

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// keyHashOf returns the engine's Go copy of librdkafka's partitioner for keyed messages, as cm
// configures it ("partitioner", default consistent_random), and its rdk kind; nil and
// rdk.PartitionerNone for the partitioners it does not copy (random, consistent, murmur2, fnv1a:
// librdkafka treats those three specially for null keys when it sees their addresses, so the engine
// cannot observe them). A key's partition is keyHash(key) % partition count, for a non-empty key;
// TestKeyHashesMatchLibrdkafka compares them with librdkafka's own code.
func keyHashOf(cm kafka.ConfigMap) (func(key []byte) uint32, int) {
	name := "consistent_random"
	var find func(m kafka.ConfigMap)
	find = func(m kafka.ConfigMap) {
		for k, v := range m {
			if sub, ok := v.(kafka.ConfigMap); ok {
				find(sub)
			} else if k == "partitioner" {
				name, _ = settingValue(v)
			}
		}
	}
	find(cm)
	switch name {
	case "consistent_random":
		return crc32.ChecksumIEEE, rdk.PartitionerConsistentRandom
	case "murmur2_random":
		return func(key []byte) uint32 { return murmur2(key) & 0x7fffffff }, rdk.PartitionerMurmur2Random
	case "fnv1a_random":
		return fnv1a, rdk.PartitionerFNV1aRandom
	}
	return nil, rdk.PartitionerNone
}

// murmur2 is librdkafka's rd_murmur2: Kafka's Java client's murmur2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(data))
	n := len(data) &^ 3
	for i := 0; i < n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(data) & 3 {
	case 3:
		h ^= uint32(data[n+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[n+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[n])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// fnv1a is librdkafka's rd_fnv1a: 32-bit FNV-1a, read as a signed int32 and made non-negative, as
// Sarama's hash partitioner does.
func fnv1a(data []byte) uint32 {
	h := int32(-2128831035) // 0x811c9dc5
	for _, c := range data {
		h ^= int32(c)
		h *= 0x01000193
	}
	if h < 0 {
		h = -h
	}
	return uint32(h)
}
