package aioproducer

import (
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// partitionerOf returns the rdk kind of the partitioner cm configures ("partitioner", default
// consistent_random) when the engine can place keyed messages itself with it, so that it can group
// them by partition: consistent_random, murmur2_random (Java's) and fnv1a_random, which the engine's
// C helper calls exactly as librdkafka would. Otherwise rdk.PartitionerNone: random, and consistent,
// murmur2 and fnv1a, which librdkafka recognizes by their addresses to treat null keys specially, are
// left to librdkafka alone.
func partitionerOf(cm kafka.ConfigMap) int {
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
		return rdk.PartitionerConsistentRandom
	case "murmur2_random":
		return rdk.PartitionerMurmur2Random
	case "fnv1a_random":
		return rdk.PartitionerFNV1aRandom
	}
	return rdk.PartitionerNone
}

// stickyLinger is how long unkeyed messages of a topic go to the same partition, as cm configures
// librdkafka's sticky partitioner: sticky.partitioning.linger.ms, by default twice linger.ms (itself 5
// ms by default).
func stickyLinger(cm kafka.ConfigMap) time.Duration {
	ms := func(keys ...string) (float64, bool) {
		var val float64
		found := false
		var find func(m kafka.ConfigMap)
		find = func(m kafka.ConfigMap) {
			for k, v := range m {
				if sub, ok := v.(kafka.ConfigMap); ok {
					find(sub)
					continue
				}
				for _, want := range keys {
					if k == want {
						s, _ := settingValue(v)
						if f, err := strconv.ParseFloat(s, 64); err == nil {
							val, found = f, true
						}
					}
				}
			}
		}
		find(cm)
		return val, found
	}
	if v, ok := ms("sticky.partitioning.linger.ms"); ok {
		return time.Duration(v * float64(time.Millisecond))
	}
	linger := 5.0
	if v, ok := ms("linger.ms", "queue.buffering.max.ms"); ok {
		linger = v
	}
	return time.Duration(2 * linger * float64(time.Millisecond))
}
