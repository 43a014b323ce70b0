package filter

import (
	"context"

	"github.com/occystrap/occystrap/stage"
)

// failure keeps the first real error of a stage's layer workers
// (stage.FirstError: a failure wins over the cancellations it causes) and
// cancels their context with each error. Its methods are safe for
// concurrent use.
type failure struct {
	cancel context.CancelCauseFunc
	errs   stage.FirstError
}

// set records err and cancels the context with it (the first cancel sets
// the cause).
func (f *failure) set(err error) {
	f.errs.Record(err)
	f.cancel(err)
}

// first is the first real error recorded, else the first cancellation, or
// nil.
func (f *failure) first() error { return f.errs.Err() }
