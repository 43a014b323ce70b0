package stage

import (
	"context"
	"fmt"
	"sync"
)

// Window is the credit of a reorder buffer: layer Seq may start only while
// Seq < next+size, where next is the next layer the ordered sink waits for.
// It is safe for concurrent use. A nil *Window never blocks.
type Window struct {
	size int

	mu      sync.Mutex
	next    int
	changed chan struct{}
}

// NewWindow returns a window of size credits.
func NewWindow(size int) *Window {
	if size < 1 {
		size = 1
	}
	return &Window{size: size, changed: make(chan struct{})}
}

// Size is the number of credits.
func (w *Window) Size() int { return w.size }

// Acquire blocks until layer seq may start, or ctx is done. Acquiring the
// same seq again returns at once.
func (w *Window) Acquire(ctx context.Context, seq int) error {
	if w == nil {
		return nil
	}
	for {
		w.mu.Lock()
		if seq < w.next+w.size {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// advance records that layer next was delivered.
func (w *Window) advance() {
	w.mu.Lock()
	w.next++
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// reorderBuffer delivers layers in Seq order. The config passes at once.
type reorderBuffer struct {
	win     *Window
	held    map[int]Item
	maxHeld int
}

func (r *reorderBuffer) run(ctx context.Context, in <-chan Item, out chan<- Item, c *counter) error {
	r.held = make(map[int]Item)
	next := 0
	for it := range in {
		c.add(it)
		if it.Kind != KindLayer {
			if err := Send(ctx, out, it); err != nil {
				return err
			}
			continue
		}
		if it.Seq < next {
			_ = it.Release()
			return fmt.Errorf("reorder: layer %d (%s) arrived twice", it.Seq, it.Name)
		}
		if _, dup := r.held[it.Seq]; dup {
			_ = it.Release()
			return fmt.Errorf("reorder: layer %d (%s) arrived twice", it.Seq, it.Name)
		}
		r.held[it.Seq] = it
		if len(r.held) > r.maxHeld {
			r.maxHeld = len(r.held)
		}
		for {
			h, ok := r.held[next]
			if !ok {
				break
			}
			delete(r.held, next)
			next++
			if err := Send(ctx, out, h); err != nil {
				return err
			}
			r.win.advance()
		}
	}
	if len(r.held) > 0 {
		return fmt.Errorf("reorder: layer %d never arrived (%d later layers held)", next, len(r.held))
	}
	return nil
}

func (r *reorderBuffer) releaseHeld() {
	for k, it := range r.held {
		_ = it.Release()
		delete(r.held, k)
	}
}
