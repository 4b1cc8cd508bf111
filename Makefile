# aioproducer - make targets. Plain `make test` needs only Go and gcc; the real-Kafka suite and make
# test-serde (its Schema Registry) need Java 17+ and Maven (see scripts/README.md).
GO ?= go

.PHONY: all build test test-cgocheck race vet fmt staticcheck lint tidy cover bench fuzz reliability flake quickstart ci

all: vet test

build:
	$(GO) build ./...

## test: the whole default suite with the race detector (goleak checks every package that has tests).
## A test that hangs fails its package after TEST_TIMEOUT, and go test names it ("running tests:").
TEST_TIMEOUT ?= 10m
test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd bench && $(GO) test -race -count=1 -timeout 5m ./...

race: test

## test-cgocheck: the packages that call librdkafka through cgo (the root package and its binding,
## internal/rdk) built with cgocheck2: every pointer passed to C is checked.
test-cgocheck:
	GOEXPERIMENT=cgocheck2 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) . ./internal/rdk

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd reliability/kfake && $(GO) vet ./...
	cd serde && $(GO) vet ./...
	cd aioprom && $(GO) vet ./...
	cd aiootel && $(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd bench && $(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd reliability/kfake && $(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd serde && $(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd aioprom && $(GO) mod tidy && git diff --exit-code go.mod go.sum
	cd aiootel && $(GO) mod tidy && git diff --exit-code go.mod go.sum

STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

staticcheck:
	$(STATICCHECK) ./...
	cd bench && $(STATICCHECK) ./...
	cd reliability/kfake && $(STATICCHECK) ./...
	cd serde && $(STATICCHECK) ./...
	cd aioprom && $(STATICCHECK) ./...
	cd aiootel && $(STATICCHECK) ./...

lint: fmt vet tidy staticcheck

cover:
	mkdir -p .cache
	$(GO) test -race -count=1 -coverprofile=.cache/cover.out ./... && $(GO) tool cover -func=.cache/cover.out | tail -1

## bench: side-by-side benchmarks against raw confluent-kafka-go, interleaved, medians and ratios.
bench:
	bash scripts/bench.sh 5

## bench-kafka-scale: bench/'s SCALE cells (1 to 10,000 topics, 1,000 keyed partitions, 1/64/256 goroutines)
## against one real broker in .cache/kafka/run-scale; tables in .cache/bench/kafka-scale-latest.md.
## Not part of CI: slow. BENCH_KAFKA_SCALE_FLAGS sets bench's flags (scripts/README.md).
BENCH_KAFKA_SCALE_FLAGS ?= -reps 3 -max 500000 -scale-only -scale topics,partitions,goroutines
.PHONY: bench-kafka-scale
bench-kafka-scale:
	BENCH_KAFKA_OUT=kafka-scale BENCH_KAFKA_STATE_DIR=$(CURDIR)/.cache/kafka/run-scale bash scripts/bench-kafka.sh $(BENCH_KAFKA_SCALE_FLAGS)

## bench-kafka-churn: bench/'s churn cell (100 messages to each of many one-partition topics in turn; memory
## before, after, and after an idle minute) against one real broker in .cache/kafka/run-churn; tables in
## .cache/bench/kafka-churn-latest.md. BENCH_KAFKA_CHURN_FLAGS sets bench's flags (-churn-topics, ...).
BENCH_KAFKA_CHURN_FLAGS ?= -scale-only -scale churn -churn-topics 20000
.PHONY: bench-kafka-churn
bench-kafka-churn:
	BENCH_KAFKA_OUT=kafka-churn BENCH_KAFKA_STATE_DIR=$(CURDIR)/.cache/kafka/run-churn bash scripts/bench-kafka.sh $(BENCH_KAFKA_CHURN_FLAGS)

## bench-kafka-stuck: bench/'s stuck cell: a 3-node cluster of its own (.cache/kafka/run-stuck3), one broker
## SIGSTOPped 30 s under unkeyed load at a fixed rate, raw, aio and franz-go in turn; tables in
## .cache/bench/kafka-stuck-latest.md. About 7 minutes. Not part of CI. BENCH_KAFKA_STUCK_FLAGS adds bench flags
## (-stuck-rate, -stuck-pause, -clients, ...; scripts/README.md).
BENCH_KAFKA_STUCK_FLAGS ?=
.PHONY: bench-kafka-stuck
bench-kafka-stuck:
	BENCH_KAFKA_OUT=kafka-stuck BENCH_KAFKA_STATE_DIR=$(CURDIR)/.cache/kafka/run-stuck1 \
	  BENCH_KAFKA_STUCK_STATE_DIR=$(CURDIR)/.cache/kafka/run-stuck3 \
	  AIOBENCH_COMMAND="make bench-kafka-stuck$(if $(BENCH_KAFKA_STUCK_FLAGS), BENCH_KAFKA_STUCK_FLAGS='$(BENCH_KAFKA_STUCK_FLAGS)')" \
	  bash scripts/bench-kafka.sh -scale-only -scale stuck $(BENCH_KAFKA_STUCK_FLAGS)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzValidateMessage -fuzztime 30s .
	$(GO) test -run '^$$' -fuzz FuzzProducerMessage -fuzztime 60s -parallel 1 .

## reliability: the fault, load and shutdown-race tests alone (they also run in make test); see RELIABILITY.md.
reliability:
	$(GO) test -race -count=1 -v -run 'TestReliability|FuzzProducerMessage' .

## flake: the default suite 20 times in a row.
flake:
	$(GO) test -race -count=20 -timeout 60m .

quickstart:
	$(GO) run ./examples/quickstart

include scripts/kafka.mk
include reliability/kfake/kfake.mk
include serde/serde.mk
include scripts/plugins.mk
