package dir

import (
	"os"
	"testing"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConformance runs the sink contract's suite on dir://, plain and
// expanded (the expanded tree is part of what is compared).
func TestConformance(t *testing.T) {
	for name, expand := range map[string]bool{"plain": false, "expand": true} {
		t.Run(name, func(t *testing.T) {
			paths := map[stage.Output]string{}
			stagetest.RunSinkConformance(t, stagetest.SinkSuite{
				New: func(t *testing.T) stage.Output {
					p := t.TempDir()
					w, err := New(p, Options{Expand: expand, Parallel: 3, SameOwner: os.Geteuid() == 0})
					if err != nil {
						t.Fatal(err)
					}
					paths[w] = p
					return w
				},
				View: func(t *testing.T, out stage.Output, _ stage.Image) []string {
					return stagetest.Listing(t, paths[out])
				},
			})
		})
	}
}
