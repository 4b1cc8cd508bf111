#!/usr/bin/env bash
# bench.sh - run the side-by-side benchmarks (raw confluent-kafka-go vs aioproducer) interleaved, REPS
# times each, and print the median of every benchmark and the ratio of each aioproducer benchmark to its
# raw pair. Usage: scripts/bench.sh [REPS] (default 5). Output also goes to .cache/bench/latest.txt, and
# as markdown headed by the command, commit, machine and load to .cache/bench/mock-latest.md (which
# scripts/benchmarks-md.sh puts into BENCHMARKS.md).
set -euo pipefail
reps=${1:-5}
out_dir=.cache/bench
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
mkdir -p "$out_dir"
raw="$out_dir/raw.txt"
: >"$raw"
go test -c -o "$out_dir/aioproducer.test" .
for i in $(seq 1 "$reps"); do
  echo "bench: rep $i/$reps" >&2
  # librdkafka's mock cluster prints a warning on stderr: keep it out of the results.
  "$out_dir/aioproducer.test" -test.run '^$' -test.bench 'LoneMessage' -test.benchtime 300x -test.benchmem 2>/dev/null | grep '^Benchmark' >>"$raw"
  "$out_dir/aioproducer.test" -test.run '^$' -test.bench 'Throughput' -test.benchtime 200000x -test.benchmem 2>/dev/null | grep '^Benchmark' >>"$raw"
done
awk -v reps="$reps" '
  function median(name,   n, i, j, t, a) {
    n = split(vals[name], a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    name = $1; sub(/-[0-9]+$/, "", name)
    if (!(name in vals)) order[++k] = name
    vals[name] = vals[name] " " $3
    for (f = 4; f <= NF; f++) if ($(f) == "allocs/op") allocs[name] = $(f - 1)
  }
  END {
    printf "%-52s %14s %10s\n", "benchmark (median of " reps ")", "ns/op", "allocs/op"
    for (i = 1; i <= k; i++) { m[order[i]] = median(order[i]); printf "%-52s %14.0f %10s\n", order[i], m[order[i]], allocs[order[i]] }
    print ""
    print "ratios, aioproducer / raw (ns per message; below 1 is faster):"
    for (i = 1; i <= k; i++) {
      n = order[i]; if (n !~ /aioproducer/) continue
      r = n; sub(/aioproducer.*/, "raw", r)
      if (r in m) printf "  %-50s %.2f\n", n, m[n] / m[r]
    }
  }' "$raw" | tee "$out_dir/latest.txt"
{
  echo "# make bench (librdkafka's in-process mock cluster)"
  echo
  echo "- command: \`scripts/bench.sh $reps\` (\`make bench\`): raw confluent-kafka-go and aioproducer alternate in one process, $reps interleaved reps, medians; one partition, 100 B values, acks=all, idempotence on"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!.cache' 2>/dev/null || echo ' (dirty)')"
  echo "- date: $(date -u '+%F %T') UTC; $(nproc) CPUs; go: $(go env GOVERSION)"
  echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(($(date +%s) - t0)) s"
  echo
  echo '```'
  cat "$out_dir/latest.txt"
  echo '```'
} >"$out_dir/mock-latest.md"
