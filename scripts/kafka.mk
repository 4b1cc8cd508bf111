# scripts/kafka.mk - Kafka integration-test targets; `include scripts/kafka.mk`
# from the main Makefile. Brokers are real Apache Kafka (KRaft) JVMs on
# 127.0.0.1, jars fetched from Maven Central into .cache/kafka (see scripts/README.md).
#
#   make kafka-up          single broker, prints its bootstrap address
#   make kafka-up3         3-node cluster (state in .cache/kafka/run3)
#   make kafka-up-secure   single broker with SASL_SSL, SSL and OAUTHBEARER listeners
#                          (state in .cache/kafka/run-secure: client.json, secure.json, tls/)
#   make kafka-status      what is running
#   make kafka-down        stop all three and delete their data (and the secure one's keys)
#   make test-kafka        brokers up, go test -race -tags kafka ./kafkatest/..., brokers down
#                          (extra go test flags: make test-kafka KAFKA_TEST_FLAGS='-v -run TestX')
#   make bench-kafka       one broker up (.cache/kafka/run-bench), bench/ -broker against it, broker
#                          down; tables in .cache/bench/kafka-latest.md. Not part of CI: slow and
#                          noisy. BENCH_KAFKA_FLAGS sets bench's flags (default: the documented matrix)

KAFKA_SCRIPTS_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
KAFKA_SH := $(KAFKA_SCRIPTS_DIR)/kafka.sh
KAFKA_RUN3_DIR := $(abspath $(KAFKA_SCRIPTS_DIR)/../.cache/kafka/run3)
KAFKA_RUN_SECURE_DIR := $(abspath $(KAFKA_SCRIPTS_DIR)/../.cache/kafka/run-secure)
KAFKA_TEST_FLAGS ?=
BENCH_KAFKA_FLAGS ?= -reps 3 -sizes 100,1000,10000 -compression none,lz4,zstd -partitions 1,6

.PHONY: kafka-fetch kafka-up kafka-up3 kafka-up-secure kafka-status kafka-down test-kafka bench-kafka

kafka-fetch:
	@bash $(KAFKA_SH) fetch

kafka-up:
	@bash $(KAFKA_SH) up

kafka-up3:
	@KAFKA_STATE_DIR=$(KAFKA_RUN3_DIR) bash $(KAFKA_SH) up3

kafka-up-secure:
	@KAFKA_STATE_DIR=$(KAFKA_RUN_SECURE_DIR) bash $(KAFKA_SH) up-secure

kafka-status:
	-@bash $(KAFKA_SH) status
	-@KAFKA_STATE_DIR=$(KAFKA_RUN3_DIR) bash $(KAFKA_SH) status
	-@KAFKA_STATE_DIR=$(KAFKA_RUN_SECURE_DIR) bash $(KAFKA_SH) status

kafka-down:
	@bash $(KAFKA_SH) down
	@KAFKA_STATE_DIR=$(KAFKA_RUN3_DIR) bash $(KAFKA_SH) down
	@KAFKA_STATE_DIR=$(KAFKA_RUN_SECURE_DIR) bash $(KAFKA_SH) down

test-kafka:
	@bash $(KAFKA_SCRIPTS_DIR)/test-kafka.sh $(KAFKA_TEST_FLAGS)

bench-kafka:
	@bash $(KAFKA_SCRIPTS_DIR)/bench-kafka.sh $(BENCH_KAFKA_FLAGS)
