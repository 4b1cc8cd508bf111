#!/usr/bin/env bash
# ab.sh - interleaved A/B runs of rkexp: ab.sh REPS LABEL "ARGS" [LABEL "ARGS"]...
# ARGS that do not start with '-' start with the binary to run instead (e.g. a realab build).
# Each rep runs every configuration once, in order (ABAB...); prints each run, then the median
# msgs/s and cpu µs/msg per configuration as a Markdown table. Needs BOOTSTRAP; the topic is
# rkexp-<size>-<codec> unless ARGS name one (-t). Records /proc/loadavg before and after.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${RKEXP:-$root/.cache/rkexp/rkexp}
reps=$1
shift
labels=() args=()
while (($#)); do labels+=("$1"); args+=("$2"); shift 2; done
declare -A rate cpu
echo "loadavg before: $(cat /proc/loadavg)"
for ((r = 1; r <= reps; r++)); do
	for i in "${!labels[@]}"; do
		# shellcheck disable=SC2086 # ARGS is a word list
		b=$bin a=${args[$i]}
		if [[ $a != -* ]]; then b=${a%% *} a=${a#* }; fi # ARGS may start with another binary
		out=$("$b" -b "$BOOTSTRAP" $a 2>/dev/null | tail -1)
		echo "rep $r ${labels[$i]}: $out"
		rate[$i]+="$(sed -n 's/.*msgs\/s=\([0-9]*\).*/\1/p' <<<"$out") "
		cpu[$i]+="$(sed -n 's/.*cpu_us_per_msg=\([0-9.]*\).*/\1/p' <<<"$out") "
	done
done
echo "loadavg after: $(cat /proc/loadavg)"
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| config | args | msgs/s (median of $reps) | client CPU µs/msg | runs (msgs/s) |"
echo "| --- | --- | --- | --- | --- |"
for i in "${!labels[@]}"; do
	echo "| ${labels[$i]} | \`${args[$i]}\` | $(med <<<"${rate[$i]}") | $(med <<<"${cpu[$i]}") | ${rate[$i]% } |"
done
