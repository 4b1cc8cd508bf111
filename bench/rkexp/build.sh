#!/usr/bin/env bash
# build.sh - builds rkexp against the static librdkafka that confluent-kafka-go bundles (the version
# go.mod pins), into .cache/rkexp/rkexp at the repository root.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
v=$(cd "$root" && go list -m -f '{{.Dir}}' github.com/confluentinc/confluent-kafka-go/v2)
vendor=$v/kafka/librdkafka_vendor
mkdir -p "$root/.cache/rkexp"
cc -O2 -Wall -I"$vendor" -o "$root/.cache/rkexp/rkexp" rkexp.c "$vendor/librdkafka_glibc_linux_amd64.a" -lm -ldl -lpthread -lrt
echo "$root/.cache/rkexp/rkexp"
