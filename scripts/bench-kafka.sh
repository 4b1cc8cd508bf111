#!/usr/bin/env bash
# bench-kafka.sh - the side-by-side producer benchmarks (bench/) against a real Apache Kafka broker:
# starts one KRaft broker with kafka.sh (its own state dir, .cache/kafka/run-bench), runs
#   bench -broker BOOTSTRAP [flags]
# and always stops the broker again (trap). The tables go to stdout and to
# .cache/bench/kafka-<UTC time>.md (and .cache/bench/kafka-latest.md), headed by the command, the
# commit, the date and the load average; progress lines go to .cache/bench/kafka-<UTC time>.log.
#
#   scripts/bench-kafka.sh [bench flags]      e.g. -reps 3 -sizes 100,1000 -compression none,lz4 -partitions 1,6
#
# Also fetched on first use, and each row skipped with a note when it cannot be:
#   the Java producer: kafka-tools 4.4.0 (ProducerPerformance) from Maven Central through
#     scripts/pom-tools.xml into .cache/kafka/tools-libs (needs java and mvn)
#   the Python clients: a venv in .cache/bench-py with confluent-kafka from PyPI (BENCH_PY_PACKAGES)
# Environment: BENCH_KAFKA_PY=0 skips the venv, BENCH_KAFKA_JAVA=0 the Java rows; the KAFKA_* variables
# of kafka.sh apply to the broker. BENCH_KAFKA_STATE_DIR is the broker's state dir, BENCH_KAFKA_OUT the
# name the output files start with (default kafka: .cache/bench/kafka-<UTC time>.md, kafka-latest.md).
#
# SCALE cells (bench -scale / -scale-only; make bench-kafka-scale): with -scale-only neither Java nor
# Python is fetched (no row of theirs runs); with -scale the broker's heap defaults to 1g (KAFKA_HEAP), and
# the broker's open-file limit is passed to bench (AIOBENCH_BROKER_NOFILE), which skips a cell whose
# partitions the broker could not keep open (one file each) instead of letting the broker die mid-run.
# With -scale the broker also removes a deleted topic's files after 1 s, not 60 s (KAFKA_FILE_DELETE_DELAY_MS,
# KAFKA_LOG_SEGMENT_DELETE_DELAY_MS; the churn cell deletes its topics behind it as it goes).
# The stuck cell (-scale stuck) starts a 3-node cluster of its own with `kafka.sh up3` in
# BENCH_KAFKA_STUCK_STATE_DIR (default: the broker's state dir + "-stuck") and takes it down after the
# cell; the trap here takes that state dir down too.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
KAFKA_SH=$SCRIPT_DIR/kafka.sh
CACHE=$REPO_ROOT/.cache
STATE_DIR=${BENCH_KAFKA_STATE_DIR:-$CACHE/kafka/run-bench}
TOOLS_POM=$SCRIPT_DIR/pom-tools.xml
TOOLS_DIR=$CACHE/kafka/tools-libs
PY_DIR=$CACHE/bench-py
PY_PACKAGES=${BENCH_PY_PACKAGES:-confluent-kafka==2.16.1}
OUT_DIR=$CACHE/bench
OUT_NAME=${BENCH_KAFKA_OUT:-kafka}
STUCK_STATE_DIR=${BENCH_KAFKA_STUCK_STATE_DIR:-$STATE_DIR-stuck}
scale_only=0 scale=0
for a in "$@"; do
  case $a in
    -scale-only | --scale-only | -scale-only=true | --scale-only=true) scale_only=1 scale=1 ;;
    -scale | --scale | -scale=* | --scale=*) scale=1 ;;
  esac
done
if [[ $scale == 1 ]]; then
  export KAFKA_HEAP=${KAFKA_HEAP:-1g}
  export KAFKA_FILE_DELETE_DELAY_MS=${KAFKA_FILE_DELETE_DELAY_MS:-1000}
  export KAFKA_LOG_SEGMENT_DELETE_DELAY_MS=${KAFKA_LOG_SEGMENT_DELETE_DELAY_MS:-1000}
fi
# what bench needs to run the stuck cell, and to name the command in its output
export AIOBENCH_KAFKA_SH=$KAFKA_SH AIOBENCH_STUCK_STATE_DIR=$STUCK_STATE_DIR
export AIOBENCH_COMMAND=${AIOBENCH_COMMAND:-scripts/bench-kafka.sh $*}

log() { printf 'bench-kafka: %s\n' "$*" >&2; }

# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "stopping the broker"
  KAFKA_STATE_DIR=$STATE_DIR "$KAFKA_SH" down || true
  if [[ -f $STUCK_STATE_DIR/cluster.env ]]; then # the stuck cell's cluster, if bench left it up
    KAFKA_STATE_DIR=$STUCK_STATE_DIR "$KAFKA_SH" down || true
  fi
  exit "$rc"
}

fetch_tools() {
  local sum
  sum=$(sha256sum "$TOOLS_POM" | cut -d' ' -f1)
  [[ -f $TOOLS_DIR/.pom.sha256 && $(cat "$TOOLS_DIR/.pom.sha256") == "$sum" ]] && return 0
  command -v mvn >/dev/null 2>&1 || { log "mvn not found: the Java rows will be skipped"; return 1; }
  log "fetching kafka-tools with Maven (log in $CACHE/kafka/tools-fetch.log)"
  local tmp
  tmp=$(mktemp -d "$CACHE/kafka/tools-libs.tmp.XXXXXX")
  if ! timeout 900 mvn -B -q -f "$TOOLS_POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp" </dev/null >"$CACHE/kafka/tools-fetch.log" 2>&1; then
    rm -rf "$tmp"
    log "Maven could not fetch kafka-tools: the Java rows will be skipped"
    return 1
  fi
  echo "$sum" >"$tmp/.pom.sha256"
  rm -rf "$TOOLS_DIR"
  mv "$tmp" "$TOOLS_DIR"
}

make_venv() {
  [[ -f $PY_DIR/.installed && $(cat "$PY_DIR/.installed") == "$PY_PACKAGES" ]] && return 0
  command -v python3 >/dev/null 2>&1 || { log "python3 not found: the Python rows will be skipped"; return 1; }
  log "making a venv in $PY_DIR with $PY_PACKAGES"
  rm -rf "$PY_DIR"
  python3 -m venv "$PY_DIR" && "$PY_DIR/bin/pip" install --quiet --disable-pip-version-check "$PY_PACKAGES" &&
    echo "$PY_PACKAGES" >"$PY_DIR/.installed" || { log "could not make the venv: the Python rows will be skipped"; return 1; }
}

mkdir -p "$OUT_DIR" "$CACHE/kafka"
"$KAFKA_SH" fetch
java_flag=() py_flag=()
if [[ $scale_only == 1 ]]; then
  log "-scale-only: no Java or Python rows, nothing to fetch for them"
elif [[ ${BENCH_KAFKA_JAVA:-1} != 0 ]] && command -v java >/dev/null 2>&1 && fetch_tools; then
  java_flag=(-java-libs "$TOOLS_DIR")
fi
if [[ $scale_only == 0 && ${BENCH_KAFKA_PY:-1} != 0 ]] && make_venv; then
  py_flag=(-python "$PY_DIR/bin/python")
fi
log "building bench/"
(cd "$REPO_ROOT/bench" && go build -o "$OUT_DIR/aiobench" .)

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BOOT=$(KAFKA_STATE_DIR=$STATE_DIR KAFKA_AUTO_CREATE_TOPICS=false "$KAFKA_SH" up)
log "broker up: $BOOT"
broker_pid=$(KAFKA_STATE_DIR=$STATE_DIR "$KAFKA_SH" pid 1 || true)
broker_nofile=$(awk '/^Max open files/ {print $4}' "/proc/$broker_pid/limits" 2>/dev/null || true)
if [[ $broker_nofile =~ ^[0-9]+$ ]]; then
  export AIOBENCH_BROKER_NOFILE=$broker_nofile
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$OUT_DIR/$OUT_NAME-$stamp.md
{
  echo "# bench -broker (real Kafka 4.4.0, one KRaft broker via scripts/kafka.sh)"
  echo
  echo "- command: \`$AIOBENCH_COMMAND\`"
  echo "- commit: $(git -C "$REPO_ROOT" rev-parse --short HEAD)$(git -C "$REPO_ROOT" diff --quiet HEAD -- . ':!.cache' 2>/dev/null || echo ' (dirty)')"
  echo "- date: $(date -u '+%F %T') UTC; $(nproc) CPUs; go: $(go env GOVERSION)"
  echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- broker: heap ${KAFKA_HEAP:-512m}, open-file limit ${broker_nofile:-unknown}, vm.max_map_count $(cat /proc/sys/vm/max_map_count 2>/dev/null || echo unknown), file.delete.delay.ms ${KAFKA_FILE_DELETE_DELAY_MS:-60000 (default)}, log.segment.delete.delay.ms ${KAFKA_LOG_SEGMENT_DELETE_DELAY_MS:-60000 (default)}"
  echo
} >"$out"
t0=$(date +%s)
(cd "$REPO_ROOT/bench" && "$OUT_DIR/aiobench" -broker "$BOOT" "${java_flag[@]}" "${py_flag[@]}" "$@") \
  >>"$out" 2> >(tee "$OUT_DIR/$OUT_NAME-$stamp.log" >&2)
{
  echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(($(date +%s) - t0)) s"
} >>"$out"
cp "$out" "$OUT_DIR/$OUT_NAME-latest.md"
cat "$out"
log "tables in $out"
