module github.com/seed-f937cf20/aioproducer/bench

go 1.26.0

require (
	github.com/confluentinc/confluent-kafka-go/v2 v2.15.1
	github.com/seed-f937cf20/aioproducer v0.0.0
	github.com/twmb/franz-go v1.22.3
	github.com/twmb/franz-go/pkg/kmsg v1.15.1
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
)

replace github.com/seed-f937cf20/aioproducer => ../
