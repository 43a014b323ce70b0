package stage

import "fmt"

// Ordered holds values that complete out of order (the layers of an image,
// the images of a listing) and hands them over in the order of their
// index, 0, 1, 2, ...: the one place "hold until the next in order" is
// written. The zero value is ready to use; it is not safe for concurrent
// use (its owner is one goroutine).
type Ordered[T any] struct {
	next    int
	pending map[int]T
}

// Put records the value of index i. An index below the next one to hand
// over, or one already held, is refused with an error that is ErrDuplicate.
func (o *Ordered[T]) Put(i int, v T) error {
	if i < 0 {
		return fmt.Errorf("index %d: negative", i)
	}
	if _, dup := o.pending[i]; dup || i < o.next {
		return fmt.Errorf("index %d: %w", i, ErrDuplicate)
	}
	if o.pending == nil {
		o.pending = map[int]T{}
	}
	o.pending[i] = v
	return nil
}

// Pop hands over the value of the next index if it has arrived, and moves
// on to the index after it.
func (o *Ordered[T]) Pop() (v T, ok bool) {
	v, ok = o.pending[o.next]
	if ok {
		delete(o.pending, o.next)
		o.next++
	}
	return v, ok
}

// Next is the index of the next value to hand over: the number handed
// over so far.
func (o *Ordered[T]) Next() int { return o.next }

// Held is the number of values that arrived but wait for an earlier one.
func (o *Ordered[T]) Held() int { return len(o.pending) }

// Drain removes every held value and calls release for it (a failed run
// releasing the bodies it holds).
func (o *Ordered[T]) Drain(release func(T)) {
	for i, v := range o.pending {
		delete(o.pending, i)
		release(v)
	}
}
