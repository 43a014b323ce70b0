// Package keylock is a set of mutexes by key, taken with a context: one
// holder per key at a time, waiters give up when their context ends. Locks
// for keys no one holds take no memory. It is safe for concurrent use; the
// zero value is ready.
package keylock

import (
	"context"
	"sync"
)

// Locks holds the keys being held.
type Locks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the key is released
}

// Lock waits until no one holds key, or ctx ends, then holds it until the
// returned unlock is called.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		ch, busy := l.held[key]
		if !busy {
			if l.held == nil {
				l.held = map[string]chan struct{}{}
			}
			mine := make(chan struct{})
			l.held[key] = mine
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.held, key)
				l.mu.Unlock()
				close(mine)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
