// Package kfake holds reliability tests that inject broker errors, delays, dropped connections and
// leader moves with franz-go's in-process broker kfake, which librdkafka talks to over TCP. It is a
// test-only module of its own so that users of aioproducer never download kfake; run it with
// `make test-kfake` (reliability/kfake/kfake.mk) or `cd reliability/kfake && go test -race -count=1 ./...`.
package kfake
