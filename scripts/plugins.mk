# scripts/plugins.mk - the observability adapters, each a Go module of its own (aioprom: Prometheus,
# aiootel: OpenTelemetry); `include scripts/plugins.mk` from the main Makefile.
#
#   make test-plugins      go vet, then go test -race -count=1 ./... in each module of PLUGINS (their
#                          end-to-end tests run a Producer on librdkafka's mock cluster)
#                          (extra go test flags: make test-plugins PLUGINS_TEST_FLAGS='-v -run TestX';
#                          one module: make test-plugins PLUGINS=aioprom)
#
# The modules have their own go.mod, so users of aioproducer never download Prometheus' client or
# OpenTelemetry unless they import an adapter.

PLUGINS_ROOT := $(abspath $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))/..)
PLUGINS ?= aioprom aiootel
PLUGINS_TEST_FLAGS ?=
GO ?= go

.PHONY: test-plugins

test-plugins:
	for m in $(PLUGINS); do \
		echo "test-plugins: $$m"; \
		(cd $(PLUGINS_ROOT)/$$m && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 5m $(PLUGINS_TEST_FLAGS) ./...) || exit 1; \
	done
