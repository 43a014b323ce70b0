package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConsumeStopsOnCancel gives Consume an intake channel that is never
// closed, and cancels its context once every blob it took has been pushed
// (so that no failing push can stop the intake instead): Consume must
// return context.Canceled without waiting for another item, having
// released every body it took, and push no manifest.
func TestConsumeStopsOnCancel(t *testing.T) {
	r := testregistry.Start(t, testregistry.Options{})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	k := registrysink.New(tr, registrysink.Options{Host: r.Host, Repo: "cancel/app", Tag: "v1"})
	layers := [][]byte{
		fixture.LayerTar(fixture.Layer{fixture.File("a", "one", 0o644)}),
		fixture.LayerTar(fixture.Layer{fixture.File("b", "two", 0o644)}),
	}
	var released sync.WaitGroup
	var n atomic.Int64
	items := stagetest.Items(nil, "", layers, nil)[1:] // the layers; no config
	for i := range items {
		released.Add(1)
		l := layers[i]
		items[i].Body = &stage.OpenerBody{
			OpenFunc: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil },
			ReleaseFunc: func() error {
				n.Add(1)
				released.Done()
				return nil
			},
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan stage.Item) // unbuffered: a send returns once Consume took the item
	done := make(chan error, 1)
	go func() { done <- k.Consume(ctx, in) }()
	for _, it := range items {
		select {
		case in <- it:
		case err := <-done:
			t.Fatalf("Consume returned %v before its context was cancelled", err)
		}
	}
	released.Wait() // every layer pushed: nothing in flight can fail
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a hang guard, not a speed assertion
		t.Fatal("Consume did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Consume = %v, want context.Canceled", err)
	}
	if got := n.Load(); got != int64(len(layers)) {
		t.Errorf("%d bodies released, want %d", got, len(layers))
	}
	if k.Digest() != "" {
		t.Errorf("manifest %s pushed after cancellation", k.Digest())
	}
}
