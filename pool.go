package aioproducer

import "sync"

// pool is a typed sync.Pool of *T. Only values the library owns go in it: a value is put back when no
// one (the producer, librdkafka, the caller) can reach it any more.
type pool[T any] struct {
	p sync.Pool
}

// newPool returns a pool that builds a new *T with newFn when it is empty.
func newPool[T any](newFn func() *T) *pool[T] {
	return &pool[T]{p: sync.Pool{New: func() any { return newFn() }}}
}

func (p *pool[T]) get() *T  { return p.p.Get().(*T) }
func (p *pool[T]) put(v *T) { p.p.Put(v) }
