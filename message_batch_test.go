package aioproducer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateMessage(t *testing.T) {
	tests := []struct {
		name    string
		m       *Message
		size    int64
		errText string // empty: valid
	}{
		{"nil message", nil, 0, "nil message"},
		{"empty topic", &Message{}, 0, "empty topic"},
		{"topic of 249 characters", &Message{Topic: strings.Repeat("a", 249)}, 0, ""},
		{"topic of 250 characters", &Message{Topic: strings.Repeat("a", 250)}, 0, "more than 249"},
		{"topic with a space", &Message{Topic: "a b"}, 0, "not one of"},
		{"topic with a slash", &Message{Topic: "a/b"}, 0, "not one of"},
		{"topic with non-ASCII", &Message{Topic: "tópico"}, 0, "character 'ó' is not one of"},
		{"topic with a character of 4 bytes", &Message{Topic: "ok🙂"}, 0, "character '🙂' is not one of"},
		{"topic .", &Message{Topic: "."}, 0, "not a legal name"},
		{"topic ..", &Message{Topic: ".."}, 0, "not a legal name"},
		{"legal punctuation", &Message{Topic: "a.b_c-D9"}, 0, ""},
		{"nil key and value", &Message{Topic: "t"}, 0, ""},
		{"empty key and value", &Message{Topic: "t", Key: []byte{}, Value: []byte{}}, 0, ""},
		{"size counts key value and headers", &Message{Topic: "t", Key: []byte("kk"), Value: []byte("vvv"),
			Headers: []Header{{Key: "h", Value: []byte("12")}, {Key: "n", Value: nil}}}, 2 + 3 + 1 + 2 + 1, ""},
		{"header key not UTF-8", &Message{Topic: "t", Headers: []Header{{Key: "\xff"}}}, 0, "not valid UTF-8"},
		{"header key with a NUL byte", &Message{Topic: "t", Headers: []Header{{Key: "a\x00b"}}}, 0, "NUL byte"},
		{"explicit partition 0", &Message{Topic: "t", Partition: ExplicitPartition(0)}, 0, ""},
		{"negative partition", &Message{Topic: "t", Partition: ExplicitPartition(-1)}, 0, "negative partition"},
		{"timestamp 1 ms after the epoch", &Message{Topic: "t", Timestamp: time.UnixMilli(1)}, 0, ""},
		{"timestamp at the epoch", &Message{Topic: "t", Timestamp: time.UnixMilli(0)}, 0, "reads as unset"},
		{"timestamp in the epoch's first millisecond", &Message{Topic: "t", Timestamp: time.Unix(0, 999_999)}, 0, "reads as unset"},
		{"timestamp before 1970", &Message{Topic: "t", Timestamp: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}, 0, "before 1970"},
		{"timestamp in 2262, the last one", &Message{Topic: "t", Timestamp: maxTimestamp}, 0, ""},
		{"timestamp after 2262-04-11", &Message{Topic: "t", Timestamp: maxTimestamp.Add(time.Millisecond)}, 0, "the latest that can be sent"},
		{"timestamp in year 3000", &Message{Topic: "t", Timestamp: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, 0, "the latest that can be sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, err := validateMessage(tt.m)
			if tt.errText == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.size, size)
				return
			}
			require.ErrorIs(t, err, ErrInvalidMessage)
			assert.Contains(t, err.Error(), tt.errText)
		})
	}
}

func TestPartitionZeroValueMeansAny(t *testing.T) {
	var m Message
	id, ok := m.Partition.ID()
	assert.False(t, ok)
	assert.EqualValues(t, -1, id, "kafka.PartitionAny")
	assert.Equal(t, "any", m.Partition.String())

	id, ok = ExplicitPartition(0).ID()
	assert.True(t, ok)
	assert.Zero(t, id)
	assert.Equal(t, "0", ExplicitPartition(0).String())
}

func TestMessageBatchFactoryRefusesMixedOrEmptyBatches(t *testing.T) {
	a := &record{msg: &Message{Topic: "a"}}
	b := &record{msg: &Message{Topic: "b"}}
	a.size = 5
	assert.Panics(t, func() { newMessageBatch("a", nil) })
	assert.Panics(t, func() { newMessageBatch("a", []*record{a, b}) })
	mb := newMessageBatch("a", []*record{a, a})
	assert.Equal(t, "a", mb.Topic())
	assert.Equal(t, 2, mb.Len())
	assert.EqualValues(t, 10, mb.bytes)
}

func FuzzValidateMessage(f *testing.F) {
	f.Add("topic", []byte("k"), []byte("v"), "h", []byte("hv"), int32(-1), int64(0))
	f.Add("", []byte(nil), []byte(nil), "", []byte(nil), int32(3), int64(-5))
	f.Add("a..b", []byte{}, []byte{}, "\xff", []byte{}, int32(0), int64(1e12))
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, hk string, hv []byte, part int32, tsMillis int64) {
		m := &Message{Topic: topic, Key: key, Value: value, Headers: []Header{{Key: hk, Value: hv}}}
		if part >= 0 {
			m.Partition = ExplicitPartition(part)
		}
		if tsMillis != 0 {
			m.Timestamp = time.UnixMilli(tsMillis)
		}
		size, err := validateMessage(m)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMessage)
			require.True(t, strings.HasPrefix(err.Error(), "aioproducer: invalid message: "), err.Error())
			return
		}
		require.NoError(t, validateTopic(topic))
		require.True(t, tsMillis == 0 || tsMillis >= 1 && !time.UnixMilli(tsMillis).After(maxTimestamp),
			"timestamp %d ms accepted", tsMillis)
		require.EqualValues(t, len(key)+len(value)+len(hk)+len(hv), size)
	})
}
