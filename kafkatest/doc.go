// Package kafkatest holds aioproducer's integration tests against real Kafka brokers. It has no code of
// its own: the tests are in files built only with the "kafka" build tag and use nothing but the
// library's public API.
//
// Run them with `make test-kafka` (scripts/test-kafka.sh), which starts a single broker, a 3-node KRaft
// cluster and a secure single broker (TLS and SASL listeners) on 127.0.0.1 with scripts/kafka.sh, runs
//
//	go test -race -tags kafka -count=1 ./kafkatest/...
//
// with these variables set, and stops the brokers afterwards:
//
//	KAFKA_BOOTSTRAP            the single broker; tests that need it skip without it
//	KAFKA_CLUSTER3_BOOTSTRAP   the 3-node cluster; the failover test skips without it
//	KAFKA_CLUSTER3_STATE_DIR   the cluster's kafka.sh state dir, so a test can kill and restart a node
//	KAFKA_SCRIPT               the absolute path of scripts/kafka.sh
//	KAFKA_SECURE_CONFIG        secure.json of the secure broker (kafka.sh up-secure); its tests skip without it
//	KAFKA_SECURE_STATE_DIR     the secure broker's kafka.sh state dir
//
// The tests create every topic they use, with unique names, so the brokers may run with
// auto.create.topics.enable=false and a suite can run twice against the same brokers.
package kafkatest
