package filter

import (
	"context"
	"errors"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/tartest"
	"github.com/occystrap/occystrap/stage"
)

var errSink = errors.New("sink gave up")

// failingSink takes one item, then fails.
type failingSink struct{}

func (failingSink) Properties() stage.SinkProperties { return stage.SinkProperties{} }

func (failingSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	it := <-in
	_ = it.Release()
	return errSink
}

// TestSinkFailure: when the sink fails mid-run, every filter stops, the
// sink's error is the one reported, every body is released and no
// temporary file is left.
func TestSinkFailure(t *testing.T) {
	t.Parallel()
	makers := map[string]func(dir string) stage.Stage{
		"normalize": func(dir string) stage.Stage { return NewNormalizeTimestamps(0, Options{TempDir: dir, Parallel: 2}) },
		"exclude":   func(dir string) stage.Stage { return NewExclude([]string{"x"}, Options{TempDir: dir, Parallel: 2}) },
		"search": func(string) stage.Stage {
			s, _ := NewSearch(fixtureImage, &discardWriter{}, SearchOptions{Pattern: "*", Parallel: 2})
			return s
		},
		"inspect": func(dir string) stage.Stage { return NewInspect(fixtureImage, dir+"/i.jsonl", 2) },
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var layers []layerSpec
			for i := range 8 {
				layers = append(layers, layerSpec{data: tartest.Layer(), file: i%2 == 0})
			}
			ti := newImage(layers...)
			_, err := stage.Run(context.Background(), ti.source(t), []stage.Stage{mk(dir), mk(dir)}, failingSink{}, stage.Options{})
			if !errors.Is(err, errSink) {
				t.Fatalf("error %v, want the sink's", err)
			}
			if ti.released.Load() != ti.bodies {
				t.Errorf("%d of %d source bodies released", ti.released.Load(), ti.bodies)
			}
			if name != "inspect" {
				emptyDir(t, dir)
			}
		})
	}
}

type discardWriter struct{}

func (*discardWriter) Write(p []byte) (int, error) { return len(p), nil }
