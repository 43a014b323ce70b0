package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConsumeStopsOnCancel gives Consume an intake channel that is never
// closed: once its context is cancelled it must return (context.Canceled,
// no manifest pushed) without waiting for another item, having released
// every body it took.
func TestConsumeStopsOnCancel(t *testing.T) {
	r := testregistry.Start(t, testregistry.Options{})
	tr := newTransport(t, []*testregistry.Registry{r}, 1)
	k := registry.New(tr, registry.Options{Host: r.Host, Repo: "cancel/app", Tag: "v1"})
	var rel stagetest.Released
	layers := [][]byte{
		fixture.LayerTar(fixture.Layer{fixture.File("a", "one", 0o644)}),
		fixture.LayerTar(fixture.Layer{fixture.File("b", "two", 0o644)}),
	}
	items := stagetest.Items([]byte(`{"rootfs":{"type":"layers"}}`), "config.json", layers, &rel)

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
	if n := rel.Count(); n != int64(len(layers)) {
		t.Errorf("%d bodies released, want %d", n, len(layers))
	}
	if k.Digest() != "" {
		t.Errorf("manifest %s pushed after cancellation", k.Digest())
	}
}
