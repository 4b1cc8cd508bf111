# reliability/kfake/kfake.mk - fault-injection tests against franz-go's in-process broker kfake;
# `include reliability/kfake/kfake.mk` from the main Makefile.
#
#   make test-kfake        go test -race -count=1 in the test-only module reliability/kfake
#                          (extra go test flags: make test-kfake KFAKE_TEST_FLAGS='-v -run TestX';
#                          KFAKE_TEST_LOG=1 in the environment prints librdkafka's debug log)
#
# The module has its own go.mod, so users of aioproducer never download kfake.

KFAKE_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
GO ?= go
KFAKE_TEST_FLAGS ?=

.PHONY: test-kfake

test-kfake:
	cd $(KFAKE_DIR) && $(GO) test -race -count=1 -timeout 5m $(KFAKE_TEST_FLAGS) ./...
