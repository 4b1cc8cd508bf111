//go:build !cgo

package rdk

// This file is built only without cgo (CGO_ENABLED=0, or no C compiler found), when every other file of
// the package is left out. Its undefined name turns "build constraints exclude all Go files" into an
// error that says what to do: this package and the librdkafka it links need cgo and a C compiler.
var _ = aioproducer_requires_cgo_set_CGO_ENABLED_1_and_install_a_C_compiler_such_as_gcc
