module github.com/seed-f937cf20/aioproducer/bench

go 1.26.0

require (
	github.com/confluentinc/confluent-kafka-go/v2 v2.15.1
	github.com/seed-f937cf20/aioproducer v0.0.0
	github.com/stretchr/testify v1.11.1
	github.com/twmb/franz-go v1.22.3
	github.com/twmb/franz-go/pkg/kmsg v1.15.1
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/seed-f937cf20/aioproducer => ../
