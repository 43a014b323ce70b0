package docker_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	dockersink "github.com/occystrap/occystrap/sinks/docker"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConformance runs the sink contract's suite on docker:// against the
// real engine (testdocker); the image ID and layer DiffIDs the engine
// reports are what is compared. Each check loads under a tag of its own
// (the engine is shared), removed afterwards.
func TestConformance(t *testing.T) {
	eng, c := setup(t)
	var n atomic.Int64
	refs := map[stage.Output]string{}
	stagetest.RunSinkConformance(t, stagetest.SinkSuite{
		New: func(t *testing.T) stage.Output {
			dest := stage.Image{Name: "occy-conformance/app", Tag: fmt.Sprintf("p%d-%d", os.Getpid(), n.Add(1))}
			ref := dest.Name + ":" + dest.Tag
			t.Cleanup(func() { _ = eng.Remove(context.Background(), ref) })
			o := dockersink.New(c, dest, dockersink.Options{TempDir: t.TempDir()})
			refs[o] = ref
			return o
		},
		View: func(t *testing.T, out stage.Output, _ stage.Image) []string {
			info, err := c.Inspect(t.Context(), refs[out])
			if err != nil {
				t.Fatal(err)
			}
			v := []string{"id " + info.ID.String()}
			for _, l := range info.RootFS.Layers {
				v = append(v, "layer "+l.String())
			}
			return v
		},
		// The engine client keeps its connections to the engine's socket.
		LeakOptions: []goleak.Option{
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		},
	})
}
