#!/usr/bin/env bash
# test-kafka.sh - run the Kafka integration suite (./kafkatest, build tag
# "kafka") against throw-away brokers, and always take the brokers down again.
#
#   scripts/test-kafka.sh [extra go test flags, e.g. -v -run TestCompression]
#
# Starts a single broker, a 3-node cluster and the secure single broker of
# `kafka.sh up-secure` (each on its own free ports and state dir, topic
# auto-creation off: the tests create their topics), then runs
#   go test -race -tags kafka -count=1 -timeout 30m ./kafkatest/... [flags]
# with KAFKA_BOOTSTRAP, KAFKA_CLUSTER3_BOOTSTRAP, KAFKA_CLUSTER3_STATE_DIR,
# KAFKA_SECURE_STATE_DIR, KAFKA_SECURE_CONFIG (its secure.json) and KAFKA_SCRIPT
# set, then the serde module's read-back tests on the
# single broker, through a real Schema Registry (scripts/registry.sh;
# KAFKA_TEST_SERDE=0 skips them, KAFKA_TEST_REGISTRY=0 uses the fake registry),
# then a smoke run of bench/ -broker
# on it (KAFKA_TEST_BENCH=0 skips it). Exits non-zero if any run
# failed; on a failure, Ctrl-C or SIGTERM the brokers are stopped all the same.
#
# Environment: KAFKA_TEST_CLUSTER3=0 skips the 3-node cluster, KAFKA_TEST_SECURE=0
# the secure broker (their tests then skip); KAFKA_TEST_SINGLE_STATE_DIR /
# KAFKA_CLUSTER3_STATE_DIR / KAFKA_SECURE_STATE_DIR move the state dirs;
# KAFKA_TEST_TIMEOUT (30m) is go test's -timeout; the KAFKA_* variables of
# kafka.sh (e.g. KAFKA_START_TIMEOUT) apply to all the clusters.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
KAFKA_SH=$SCRIPT_DIR/kafka.sh
CACHE_DIR=${KAFKA_CACHE_DIR:-$REPO_ROOT/.cache/kafka}
SINGLE_DIR=${KAFKA_TEST_SINGLE_STATE_DIR:-$CACHE_DIR/run-test-single}
CLUSTER3_DIR=${KAFKA_CLUSTER3_STATE_DIR:-$CACHE_DIR/run-test-cluster3}
SECURE_DIR=${KAFKA_SECURE_STATE_DIR:-$CACHE_DIR/run-test-secure}
REGISTRY_DIR=$REPO_ROOT/.cache/registry/run-test-kafka
REGISTRY_STARTED=0
WITH_CLUSTER3=${KAFKA_TEST_CLUSTER3:-1}
WITH_SECURE=${KAFKA_TEST_SECURE:-1}

log() { printf 'test-kafka: %s\n' "$*" >&2; }

GO_PGID=
UP_PIDS=()
out1='' out3='' outs=''
# shellcheck disable=SC2317 # called by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # an interrupted start-up: its own trap stops the nodes it started
  local p
  for p in "${UP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${UP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $GO_PGID ]]; then
    kill -TERM -- "-$GO_PGID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 -- "-$GO_PGID" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$GO_PGID" 2>/dev/null || true
  fi
  rm -f "$out1" "$out3" "$outs"
  log "stopping brokers"
  KAFKA_STATE_DIR=$SINGLE_DIR "$KAFKA_SH" down || true
  KAFKA_STATE_DIR=$CLUSTER3_DIR "$KAFKA_SH" down || true
  KAFKA_STATE_DIR=$SECURE_DIR "$KAFKA_SH" down || true
  if ((REGISTRY_STARTED)); then
    REGISTRY_STATE_DIR=$REGISTRY_DIR bash "$SCRIPT_DIR/registry.sh" down || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s)
"$KAFKA_SH" fetch

# the clusters start at once; each writes its bootstrap list to a file
mkdir -p "$CACHE_DIR"
out1=$(mktemp "$CACHE_DIR/boot1.XXXXXX")
out3=$(mktemp "$CACHE_DIR/boot3.XXXXXX")
outs=$(mktemp "$CACHE_DIR/boots.XXXXXX")
KAFKA_STATE_DIR=$SINGLE_DIR KAFKA_AUTO_CREATE_TOPICS=false "$KAFKA_SH" up >"$out1" &
p1=$!
UP_PIDS+=("$p1")
p3=
if [[ $WITH_CLUSTER3 != 0 ]]; then
  KAFKA_STATE_DIR=$CLUSTER3_DIR KAFKA_AUTO_CREATE_TOPICS=false "$KAFKA_SH" up3 >"$out3" &
  p3=$!
  UP_PIDS+=("$p3")
fi
ps=
if [[ $WITH_SECURE != 0 ]]; then
  KAFKA_STATE_DIR=$SECURE_DIR KAFKA_AUTO_CREATE_TOPICS=false "$KAFKA_SH" up-secure >"$outs" &
  ps=$!
  UP_PIDS+=("$ps")
fi
ok=1
wait "$p1" || ok=0
if [[ -n $p3 ]]; then wait "$p3" || ok=0; fi
if [[ -n $ps ]]; then wait "$ps" || ok=0; fi
BOOT1=$(cat "$out1")
BOOT3=$(cat "$out3")
BOOTS=$(cat "$outs")
rm -f "$out1" "$out3" "$outs"
UP_PIDS=()
((ok)) || { log "broker start-up failed"; exit 1; }
log "brokers up in $(($(date +%s) - t0))s: single $BOOT1${BOOT3:+, cluster $BOOT3}${BOOTS:+, secure (SASL_SSL) $BOOTS}"

export KAFKA_BOOTSTRAP=$BOOT1
export KAFKA_SCRIPT=$KAFKA_SH
if [[ -n $BOOT3 ]]; then
  export KAFKA_CLUSTER3_BOOTSTRAP=$BOOT3
  export KAFKA_CLUSTER3_STATE_DIR=$CLUSTER3_DIR
else
  unset KAFKA_CLUSTER3_BOOTSTRAP KAFKA_CLUSTER3_STATE_DIR
fi
if [[ -n $BOOTS ]]; then
  export KAFKA_SECURE_STATE_DIR=$SECURE_DIR
  export KAFKA_SECURE_CONFIG=$SECURE_DIR/secure.json
else
  unset KAFKA_SECURE_STATE_DIR KAFKA_SECURE_CONFIG
fi

cd "$REPO_ROOT"
rc=0
# run_go WHAT DIR ENV... -- ARGS...: go test ARGS in DIR with ENV, logged as WHAT; a failure sets rc.
# go test runs in its own process group so that cleanup can stop it (and the test binary under it) as
# a whole; waiting in the background keeps this shell responsive to INT/TERM.
run_go() {
  local what=$1 dir=$2 t1 gopid erc envs=()
  shift 2
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  t1=$(date +%s)
  set +e
  (cd "$dir" && exec env "${envs[@]}" setsid go test "$@") &
  gopid=$!
  GO_PGID=$gopid
  wait "$gopid"
  erc=$?
  GO_PGID=
  set -e
  log "go test $what exited with $erc after $(($(date +%s) - t1))s"
  if ((erc != 0)); then rc=$erc; fi
}
run_go "of ./kafkatest" "$REPO_ROOT" -- \
  -race -tags kafka -count=1 -timeout "${KAFKA_TEST_TIMEOUT:-30m}" ./kafkatest/... "$@"
# The serde module's read-back tests on the single broker: Avro, Protobuf and JSON Schema from the
# typed producer, decoded by confluent-kafka-go's deserializers, and by the Python client when the venv
# of `make serde-py` is there (the test skips otherwise). KAFKA_TEST_SERDE=0 skips them.
# They run through a real Schema Registry (scripts/registry.sh: Apicurio, stopped by cleanup), or the
# one SCHEMA_REGISTRY_URL names; KAFKA_TEST_REGISTRY=0 keeps them on the fake registry.
if [[ ${KAFKA_TEST_SERDE:-1} != 0 ]]; then
  registry_url=${SCHEMA_REGISTRY_URL:-}
  if [[ -z $registry_url && ${KAFKA_TEST_REGISTRY:-1} != 0 ]]; then
    REGISTRY_STARTED=1
    if ! registry_url=$(REGISTRY_STATE_DIR=$REGISTRY_DIR bash "$SCRIPT_DIR/registry.sh" up | tail -n 1); then
      log "the Schema Registry did not start (above); KAFKA_TEST_REGISTRY=0 runs the serde tests on the fake registry"
      exit 1
    fi
  fi
  log "serde read-back tests with SCHEMA_REGISTRY_URL=${registry_url:-(none: the fake registry)}"
  run_go "of the serde module" "$REPO_ROOT/serde" SCHEMA_REGISTRY_URL="$registry_url" -- -race -count=1 -run 'ReadBack|Python' -v ./...
fi
# A smoke run of the real-broker benchmark (bench/ -broker): 20k messages, 1 rep, four clients, no
# latency runs, on the single broker; a few seconds (the build reuses what `make lint` compiled). It
# checks that the benchmark still works against real Kafka, not the figures. KAFKA_TEST_BENCH=0 skips it.
if [[ ${KAFKA_TEST_BENCH:-1} != 0 ]]; then
  t1=$(date +%s)
  set +e
  (cd "$REPO_ROOT/bench" && go build -o "$REPO_ROOT/.cache/bench/aiobench-smoke" . &&
    "$REPO_ROOT/.cache/bench/aiobench-smoke" -broker "$BOOT1" -reps 1 -max 20000 -warm 2000 -works 100/none \
      -clients 'raw confluent-kafka-go,aio defaults,franz-go,C loop' -no-latency)
  erc=$?
  set -e
  log "bench smoke run exited with $erc after $(($(date +%s) - t1))s"
  if ((erc != 0)); then rc=$erc; fi
fi
log "done after $(($(date +%s) - t0))s in total, status $rc"
exit "$rc"
