package filter

import (
	"context"
	"errors"
	"testing"
)

func TestFailureKeepsFirst(t *testing.T) {
	t.Parallel()
	first, second := errors.New("first"), errors.New("second")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	f := &failure{cancel: cancel}
	if err := f.first(); err != nil {
		t.Fatalf("first() before any failure = %v", err)
	}
	f.set(first)
	f.set(second)
	if err := f.first(); err != first {
		t.Errorf("first() = %v, want %v", err, first)
	}
	if err := context.Cause(ctx); err != first {
		t.Errorf("context cause = %v, want %v", err, first)
	}
}

// TestFailureKeepsFirstReal: a worker's failure wins over the cancellation
// an earlier worker saw first.
func TestFailureKeepsFirstReal(t *testing.T) {
	t.Parallel()
	real := errors.New("bad tar")
	_, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	f := &failure{cancel: cancel}
	f.set(context.Canceled)
	f.set(real)
	if err := f.first(); err != real {
		t.Errorf("first() = %v, want %v", err, real)
	}
}
