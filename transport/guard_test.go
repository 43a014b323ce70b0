package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestGuardedBodyRefusesReadsAfterTheRequest: the body handed to net/http
// may be read by its goroutine after RoundTrip returned; once the request is
// over, the guard makes such reads fail instead of touching memory the
// caller already reuses.
func TestGuardedBodyRefusesReadsAfterTheRequest(t *testing.T) {
	var gs guardSet
	r := gs.add(bytes.NewReader([]byte("0123456789")))
	l, ok := r.(interface{ Len() int })
	if !ok || l.Len() != 10 {
		t.Fatalf("length not kept visible: %T", r)
	}
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 4 || err != nil {
		t.Fatalf("read before close: %d %v", n, err)
	}
	gs.closeAll()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, errBodyDone) {
		t.Errorf("read after close: %d %v, want errBodyDone", n, err)
	}
	plain := gs.add(io.MultiReader(bytes.NewReader([]byte("x"))))
	if _, ok := plain.(interface{ Len() int }); ok {
		t.Error("a reader without a length got one")
	}
}
