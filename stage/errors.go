package stage

import (
	"context"
	"errors"
	"sync"
)

// The error categories of the contract. A package either returns them
// wrapped (fmt.Errorf("image %s: %w", img, stage.ErrNoConfig)), aliases
// them (var ErrNoConfig = stage.ErrNoConfig) or, where its message is
// fixed by the original, declares its own sentinel in the category
// (Sentinel). Callers match the category with errors.Is, whatever the
// package.
var (
	// ErrNoConfig: a sink's input ended without a config.
	ErrNoConfig = errors.New("no config received")
	// ErrSecondConfig: a sink received a second config for one image.
	ErrSecondConfig = errors.New("second config")
	// ErrMissingLayer: a layer the output needs is not there (skipped by
	// the source but not held by the sink, or never received).
	ErrMissingLayer = errors.New("layer missing")
	// ErrClosed: an output, input or server was used after Close.
	ErrClosed = errors.New("closed")
	// ErrOneImage: an output that holds a single image was asked for a
	// second one.
	ErrOneImage = errors.New("output holds one image")
	// ErrDuplicate: the same layer (or index) arrived twice.
	ErrDuplicate = errors.New("arrived twice")
	// ErrDiffID: a layer's content does not match its DiffID in the config.
	ErrDiffID = errors.New("layer DiffID does not match the image config")
	// ErrDigestMismatch: a blob's content does not match its digest.
	ErrDigestMismatch = errors.New("blob digest mismatch")
	// ErrImageNotFound: the source has no such image.
	ErrImageNotFound = errors.New("image not found")
)

// Sentinel returns a sentinel error with its own message that is also of
// category (errors.Is matches both), for a package whose message is fixed
// (the original's wording) but whose error belongs to a category.
func Sentinel(category error, msg string) error {
	return &sentinel{msg: msg, category: category}
}

type sentinel struct {
	msg      string
	category error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.category }

// IsCancel reports whether err is a cancellation (context.Canceled or
// context.DeadlineExceeded) rather than a failure of its own.
func IsCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// FirstError keeps the first real error of a group of goroutines: the
// first recorded that is not a cancellation (which a failure elsewhere
// often causes), or else the first cancellation. The zero value is ready
// to use; it is safe for concurrent use.
type FirstError struct {
	mu       sync.Mutex
	real     error
	canceled error
}

// Record notes err (nil is ignored) and returns it, so that a goroutine
// can end with `return errs.Record(err)`.
func (f *FirstError) Record(err error) error {
	if err == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if IsCancel(err) {
		if f.canceled == nil {
			f.canceled = err
		}
		return err
	}
	if f.real == nil {
		f.real = err
	}
	return err
}

// Err is the first real error recorded, else the first cancellation, else
// nil.
func (f *FirstError) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.real != nil {
		return f.real
	}
	return f.canceled
}

// Real is the first real error recorded, ignoring cancellations, or nil.
func (f *FirstError) Real() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.real
}
