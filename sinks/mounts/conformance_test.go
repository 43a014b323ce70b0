package mounts

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConformance runs the sink contract's suite on mounts:// (root: the
// overlay mount, trusted.* attributes and whiteout devices); the layer
// trees, the manifest and the bundle are what is compared.
func TestConformance(t *testing.T) {
	testenv.RequireRoot(t)
	paths := map[stage.Output]string{}
	stagetest.RunSinkConformance(t, stagetest.SinkSuite{
		New: func(t *testing.T) stage.Output {
			p := t.TempDir()
			w, err := New(p, Options{Parallel: 2, SameOwner: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cleanupMount(t, filepath.Join(p, "rootfs")) })
			paths[w] = p
			return w
		},
		View: func(t *testing.T, out stage.Output, _ stage.Image) []string {
			return listing(t, paths[out])
		},
		// A bundle holds one image: the second goes in after the first
		// is taken down, as a re-run would.
		Between: func(t *testing.T, out stage.Output) {
			if err := unix.Unmount(filepath.Join(paths[out], "rootfs"), 0); err != nil {
				t.Fatalf("unmount: %v", err)
			}
		},
	})
}
