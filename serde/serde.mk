# serde/serde.mk - the serde module (Schema Registry serializers, its own go.mod); `include serde/serde.mk`
# from the main Makefile.
#
#   make serde-py          a Python venv in .cache/serde-py with confluent-kafka[avro] (SERDE_PY_PACKAGES),
#                          from PyPI, for the interop test with the Python client
#   make test-serde        go vet, then go test -race -count=1 in the serde module, the Python interop
#                          test included (it fails, not skips, if the venv's Python cannot run it)
#                          (extra go test flags: make test-serde SERDE_TEST_FLAGS='-v -run TestX')
#   make bench-serde       serialization cost per message, and Produce per message with serializers,
#                          in-process (SERDE_BENCH_COUNT runs each, default 5; SERDE_BENCH selects,
#                          default all)
#
# The module has its own go.mod, so users of aioproducer never download Avro, Protobuf or the
# registry client unless they import it.

SERDE_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
SERDE_PY := $(abspath $(SERDE_DIR)/../.cache/serde-py)
SERDE_PY_PACKAGES ?= confluent-kafka[avro]==2.16.1
SERDE_TEST_FLAGS ?=
SERDE_BENCH_COUNT ?= 5
SERDE_BENCH ?= .
PYTHON3 ?= python3
GO ?= go

.PHONY: serde-py test-serde bench-serde

serde-py: $(SERDE_PY)/.installed

$(SERDE_PY)/.installed: $(SERDE_DIR)/serde.mk
	rm -rf $(SERDE_PY)
	$(PYTHON3) -m venv $(SERDE_PY)
	$(SERDE_PY)/bin/pip install --quiet --disable-pip-version-check '$(SERDE_PY_PACKAGES)'
	touch $@

test-serde: serde-py
	cd $(SERDE_DIR) && $(GO) vet ./...
	cd $(SERDE_DIR) && AIOPRODUCER_SERDE_PYTHON=$(SERDE_PY)/bin/python $(GO) test -race -count=1 -timeout 5m $(SERDE_TEST_FLAGS) ./...

bench-serde:
	@# The test binary is run directly, with stderr discarded: go test would mix the CONFWARN that the
	@# mock cluster's own client logs into the result lines.
	mkdir -p $(SERDE_DIR)/../.cache/bench
	cd $(SERDE_DIR) && $(GO) test -c -o ../.cache/bench/serde.test .
	cd $(SERDE_DIR) && ../.cache/bench/serde.test -test.run '^$$' -test.bench '$(SERDE_BENCH)' -test.benchmem -test.count $(SERDE_BENCH_COUNT) 2>/dev/null
