#!/usr/bin/env bash
# bench-kafka-prof.sh - perf profiles of bench/ clients against a real Kafka broker: starts one KRaft
# broker (.cache/kafka/run-prof), and for each client and workload runs `perf record -g --call-graph dwarf`
# on one bench -child process (its warm-up pass included; it creates its topic with PROF_PARTITIONS
# partitions, default 6, before producing: that is in the profile too), and reads the broker JVM's CPU time (/proc/PID/stat utime+stime) around it. Stops the
# broker at the end (trap). Output in .cache/prof/: NAME.data, NAME.comm.txt (samples by thread name),
# NAME.sym.txt (top symbols by thread name), NAME.cpu.txt (CPU seconds: client, broker JVM; wall; and
# the record batches the client's topic holds: count, records and bytes per batch, read with Kafka's
# kafka.tools.DumpLogSegments from the broker's log files).
#
#   scripts/bench-kafka-prof.sh [COUNT]     (default 1000000 messages; 100000 warm-up)
# Environment: PROF_CLIENTS (default "aio defaults Produce 1g|C loop (librdkafka)"), PROF_WORKS
# (default "100,none 1000,lz4"), PROF_FREQ (perf -F, default 499), PROF_PERF=0: no perf, only the CPU
# accounting (client user+sys from /usr/bin/time, broker JVM from /proc), undisturbed by perf.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
KAFKA_SH=$SCRIPT_DIR/kafka.sh
STATE_DIR=$REPO_ROOT/.cache/kafka/run-prof
OUT=$REPO_ROOT/.cache/prof
COUNT=${1:-1000000}
WARM=$((COUNT < 100000 ? COUNT : 100000))
PARTS=${PROF_PARTITIONS:-6}
FREQ=${PROF_FREQ:-499}
IFS='|' read -r -a CLIENTS <<<"${PROF_CLIENTS:-aio defaults Produce 1g|C loop (librdkafka)}"
read -r -a WORKS <<<"${PROF_WORKS:-100,none 1000,lz4}"
PERF=${PROF_PERF:-1}
[[ $PERF == 0 ]] || command -v perf >/dev/null || { echo "perf not found" >&2; exit 1; }
mkdir -p "$OUT"
(cd "$REPO_ROOT/bench" && go build -o "$OUT/aiobench" .)
# shellcheck disable=SC2317 # called by the trap
cleanup() { trap - EXIT INT TERM; KAFKA_STATE_DIR=$STATE_DIR "$KAFKA_SH" down || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BOOT=$(KAFKA_STATE_DIR=$STATE_DIR KAFKA_AUTO_CREATE_TOPICS=false "$KAFKA_SH" up)
JVM=$(KAFKA_STATE_DIR=$STATE_DIR "$KAFKA_SH" pid 1)
HZ=$(getconf CLK_TCK)
jvm_ticks() { awk '{print $14 + $15}' "/proc/$JVM/stat"; }
DATA=$(KAFKA_STATE_DIR=$STATE_DIR "$KAFKA_SH" status | awk '$1 == "node" {print $NF; exit}')
TOOLS=$REPO_ROOT/.cache/kafka/tools-libs # kafka-tools (DumpLogSegments), fetched by bench-kafka.sh
# batches TOPIC: the record batches in TOPIC's log segments (all partitions, warm-up included).
batches() {
  local logs=("$DATA/$1"-*/*.log)
  [[ -d $TOOLS ]] || { echo "not counted: no $TOOLS (make bench-kafka fetches it)"; return; }
  java -cp "$TOOLS/*" org.apache.kafka.tools.DumpLogSegments --files "$(IFS=,; echo "${logs[*]}")" 2>/dev/null |
    awk '/baseOffset:/ { for (i = 1; i < NF; i++) { if ($i == "count:") r += $(i+1); if ($i == "size:") b += $(i+1) } n++ }
      END { if (n) printf "%d batches, %d records, %.1f records and %.0f bytes per batch", n, r, r/n, b/n; else print "no batches found" }'
}
n=0
for c in "${CLIENTS[@]}"; do
  for w in "${WORKS[@]}"; do
    size=${w%,*} comp=${w#*,}
    n=$((n + 1))
    name=$(echo "$c-$size-$comp" | tr -c 'A-Za-z0-9\n-' '_')
    topic=prof-$(date +%s)-$n
    echo "== $name (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    j0=$(jvm_ticks) t0=$(date +%s.%N)
    prefix=()
    [[ $PERF == 0 ]] || prefix=(perf record -q -F "$FREQ" -g --call-graph dwarf,16384 -o "$OUT/$name.data" --)
    /usr/bin/time -f '%U %S %M' -o "$OUT/$name.time" \
      "${prefix[@]}" "$OUT/aiobench" -child "$c" -broker "$BOOT" -child-spec "$topic,$size,$comp,$COUNT,$WARM,$PARTS" >"$OUT/$name.result"
    j1=$(jvm_ticks) t1=$(date +%s.%N)
    read -r ns _ < <(sed -n 's/^RESULT //p' "$OUT/$name.result")
    {
      echo "client $c, $size B $comp, $PARTS partitions, $COUNT messages (+$WARM warm-up), broker $BOOT, load $(cut -d' ' -f1-3 /proc/loadavg)"
      echo "measured pass: $(awk -v n="$COUNT" -v ns="$ns" 'BEGIN{printf "%.0f msgs/s (%.2f s)", n/(ns/1e9), ns/1e9}')"
      echo "wall (whole process, under perf): $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f s", b-a}')"
      echo "broker JVM CPU: $(awk -v a="$j0" -v b="$j1" -v hz="$HZ" 'BEGIN{printf "%.2f s", (b-a)/hz}')"
      echo "client CPU$([[ $PERF == 0 ]] || echo ' (+perf)') (user s, sys s, maxrss KiB): $(cat "$OUT/$name.time")"
      echo "topic $topic: $(batches "$topic")"
    } >"$OUT/$name.cpu.txt"
    [[ $PERF == 0 ]] && { cat "$OUT/$name.cpu.txt" >&2; continue; }
    perf report -i "$OUT/$name.data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' >"$OUT/$name.comm.txt" || true
    perf report -i "$OUT/$name.data" --no-children --sort comm,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -80 >"$OUT/$name.sym.txt" || true
    cat "$OUT/$name.cpu.txt" >&2
  done
done
