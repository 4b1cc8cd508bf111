#!/usr/bin/env bash
# benchmarks-md.sh - writes BENCHMARKS.md from the latest results the benchmark targets left in
# .cache/bench: the summary in scripts/benchmarks-head.md (written by hand from those results), then each
# results file as its target wrote it (command, commit, machine and load in its header):
#
#   make bench               .cache/bench/mock-latest.md          (librdkafka's mock cluster)
#   make bench-kafka         .cache/bench/kafka-latest.md         (real Kafka, one broker)
#   make bench-kafka-scale   .cache/bench/kafka-scale-latest.md   (real Kafka: topics, partitions, goroutines)
#   (an earlier bench-kafka-scale run, all cells) .cache/bench/kafka-scale-earlier.md
#   make bench-kafka-churn   .cache/bench/kafka-churn-latest.md   (real Kafka: topic churn)
#   make bench-kafka-stuck   .cache/bench/kafka-stuck-latest.md   (real Kafka, 3 brokers, one SIGSTOPped)
#
# A results file that is missing is named as missing, not left out silently. Earlier results stay in git
# history, not in the file.
set -euo pipefail
cd "$(dirname "$0")/.."
out=BENCHMARKS.md
dir=.cache/bench
{
  cat scripts/benchmarks-head.md
  for entry in \
    "mock-latest|Mock cluster, one topic (make bench)" \
    "kafka-latest|Real Kafka, one topic (make bench-kafka cells)" \
    "kafka-scale-latest|Real Kafka, scale (latest run)" \
    "kafka-scale-earlier|Real Kafka, scale (earlier run, every cell)" \
    "kafka-churn-latest|Real Kafka, topic churn" \
    "kafka-stuck-latest|Real Kafka, stuck broker"; do
    f=${entry%%|*}
    echo
    echo "## ${entry#*|}"
    echo
    if [[ -f $dir/$f.md ]]; then
      # The results' own headings move two levels down, under this file's.
      sed -e 's/^#/###/' "$dir/$f.md"
    else
      echo "\`$dir/$f.md\` was not there when \`scripts/benchmarks-md.sh\` ran."
    fi
  done
} >"$out"
echo "benchmarks-md: wrote $out ($(wc -l <"$out") lines)"
