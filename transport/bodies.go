package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// stallBody fails a Read that gets no data for timeout with ErrStalled, by
// cancelling the request's context. Only time spent inside Read counts: a
// consumer that is slow to read (backpressure) is not a stall.
type stallBody struct {
	io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	timer   *time.Timer // cancels with ErrStalled; armed only during a Read
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrStalled) {
		err = fmt.Errorf("no data for %s: %w", b.timeout, ErrStalled)
	}
	return n, err
}

// sendBody is a request body that fails its request with ErrStalled when
// the server takes nothing for timeout: the clock runs from the return of
// one Read to the start of the next (time the transport spends writing
// what it read), never while Read itself waits for data to send (a slow
// source), and stops once the body is read to its end or the round trip
// is over (the wait for the answer has ResponseHeaderTimeout).
type sendBody struct {
	io.ReadCloser
	timeout time.Duration
	timer   *time.Timer // cancels with ErrStalled

	mu   sync.Mutex
	done bool
}

func (b *sendBody) Read(p []byte) (int, error) {
	b.timer.Stop()
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		b.mu.Lock()
		if !b.done {
			b.timer.Reset(b.timeout)
		}
		b.mu.Unlock()
	}
	return n, err
}

// finish stops the clock for good (net/http may read the body after the
// round trip returned).
func (b *sendBody) finish() {
	b.mu.Lock()
	b.done = true
	b.timer.Stop()
	b.mu.Unlock()
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// guardSet tracks the guarded bodies of one request's attempts.
type guardSet struct {
	mu sync.Mutex
	gs []*guardedReader
}

func (s *guardSet) add(r io.Reader) io.Reader {
	g := &guardedReader{r: r}
	s.mu.Lock()
	s.gs = append(s.gs, g)
	s.mu.Unlock()
	if l, ok := r.(interface{ Len() int }); ok {
		// Keep the length visible, so the request gets a Content-Length.
		return &guardedLenReader{guardedReader: g, l: l}
	}
	return g
}

// closeAll waits for reads in progress and refuses later ones.
func (s *guardSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gs {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
	}
}

// guardedReader reads r until closed, then fails.
type guardedReader struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

var errBodyDone = errors.New("request body read after its request ended")

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errBodyDone
	}
	return g.r.Read(p)
}

// guardedLenReader is a guardedReader whose reader knows its length.
type guardedLenReader struct {
	*guardedReader
	l interface{ Len() int }
}

func (g *guardedLenReader) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.l.Len()
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
