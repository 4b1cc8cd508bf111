# serde/serde.mk - the serde module (Schema Registry serializers, its own go.mod); `include serde/serde.mk`
# from the main Makefile.
#
#   make serde-py          a Python venv in .cache/serde-py with confluent-kafka[avro] (SERDE_PY_PACKAGES),
#                          from PyPI, for the interop test with the Python client
#   make test-serde        go vet, then go test -race -count=1 in the serde module against a real Schema
#                          Registry: Apicurio Registry, started with scripts/registry.sh (state in
#                          .cache/registry/run-test-serde) and always stopped after, also on failure or
#                          Ctrl-C; its URL is passed as SCHEMA_REGISTRY_URL. A SCHEMA_REGISTRY_URL set
#                          by the caller is used instead (nothing is started); SERDE_REGISTRY=0 runs on
#                          the fake and mock:// registries only. It fails, not skips, when the registry
#                          cannot be fetched or started (no Java 17, no Maven), and when the venv's
#                          Python cannot run the interop test.
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
SERDE_REGISTRY ?= 1
SERDE_REGISTRY_SH := $(abspath $(SERDE_DIR)/../scripts/registry.sh)
SERDE_REGISTRY_STATE_DIR ?= $(abspath $(SERDE_DIR)/../.cache/registry/run-test-serde)
# The Maven fetch (first run only: about 15 s, 142 MB) must fail clearly within .ci/run's 10-minute step.
SERDE_REGISTRY_FETCH_TIMEOUT ?= 300

.PHONY: serde-py test-serde bench-serde

serde-py: $(SERDE_PY)/.installed

$(SERDE_PY)/.installed: $(SERDE_DIR)/serde.mk
	rm -rf $(SERDE_PY)
	$(PYTHON3) -m venv $(SERDE_PY)
	$(SERDE_PY)/bin/pip install --quiet --disable-pip-version-check '$(SERDE_PY_PACKAGES)'
	touch $@

test-serde: serde-py
	cd $(SERDE_DIR) && $(GO) vet ./...
	@# One shell, so that its trap stops the registry whatever happens after it started.
	@bash -c 'set -euo pipefail; \
	  url=$${SCHEMA_REGISTRY_URL:-}; \
	  if [ -z "$$url" ] && [ "$(SERDE_REGISTRY)" != 0 ]; then \
	    export REGISTRY_STATE_DIR=$(SERDE_REGISTRY_STATE_DIR) REGISTRY_FETCH_TIMEOUT=$(SERDE_REGISTRY_FETCH_TIMEOUT); \
	    trap "bash $(SERDE_REGISTRY_SH) down" EXIT; trap "exit 130" INT; trap "exit 143" TERM; \
	    url=$$(bash $(SERDE_REGISTRY_SH) up | tail -n 1) || { \
	      echo "test-serde: the Schema Registry did not start (above); SERDE_REGISTRY=0 runs the tests on the fake registry only" >&2; exit 1; }; \
	  fi; \
	  echo "test-serde: SCHEMA_REGISTRY_URL=$${url:-(none: the fake and mock:// registries)}" >&2; \
	  cd $(SERDE_DIR) && SCHEMA_REGISTRY_URL=$$url AIOPRODUCER_SERDE_PYTHON=$(SERDE_PY)/bin/python \
	    $(GO) test -race -count=1 -timeout 5m "$$@" ./...' test-serde $(SERDE_TEST_FLAGS)

bench-serde:
	@# The test binary is run directly, with stderr discarded: go test would mix the CONFWARN that the
	@# mock cluster's own client logs into the result lines.
	mkdir -p $(SERDE_DIR)/../.cache/bench
	cd $(SERDE_DIR) && $(GO) test -c -o ../.cache/bench/serde.test .
	cd $(SERDE_DIR) && ../.cache/bench/serde.test -test.run '^$$' -test.bench '$(SERDE_BENCH)' -test.benchmem -test.count $(SERDE_BENCH_COUNT) 2>/dev/null
