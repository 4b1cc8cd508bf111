//go:build !cgo

package aioproducer

// Without cgo, confluent-kafka-go's kafka package is empty (all of its files but one need cgo) and
// this package fails with a screenful of "undefined: kafka.…" errors. Importing internal/rdk here makes
// every build without cgo stop first at internal/rdk/nocgo.go, whose error says what is missing: cgo
// and a C compiler. (engine_batch.go imports it too; this file keeps that true whatever the engines.)
import _ "github.com/seed-f937cf20/aioproducer/internal/rdk"
