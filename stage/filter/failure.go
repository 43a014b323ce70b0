package filter

import (
	"context"
	"sync"
)

// failure keeps the first error of a stage's layer workers and cancels their
// context with it. Its methods are safe for concurrent use.
type failure struct {
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	err    error
}

// set records err if it is the first and cancels the context with it.
func (f *failure) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.cancel(err)
}

// first is the first error recorded, or nil.
func (f *failure) first() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
