package dockerpush_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/engine"
	"github.com/occystrap/occystrap/internal/fixture"
	"github.com/occystrap/occystrap/internal/testdocker"
	"github.com/occystrap/occystrap/sources/dockerpush"
	"github.com/occystrap/occystrap/stage"
)

// BenchmarkEmitToFiles reads a ~100 MB image (5 layers of 20 MB of random
// data) out of the engine through a push, and copies every layer into a
// file, as dir:// does: the same work as the docker:// input's benchmark of
// the same name, for comparison.
func BenchmarkEmitToFiles(b *testing.B) {
	eng := testdocker.Require(b)
	ctx := context.Background()
	c := engine.New(eng.Socket)
	b.Cleanup(c.CloseIdle)
	img := fixture.Image{Name: "occy-bench/app", Tag: "v1"}
	for i := range 5 {
		img.Layers = append(img.Layers, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data/%d", i), 20<<20, uint64(i))})
	}
	archive := filepath.Join(b.TempDir(), "in.tar")
	f, _ := os.Create(archive)
	a, err := fixture.WriteLegacyArchive(f, img)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	if msg, err := eng.Load(ctx, archive); err != nil {
		b.Fatalf("load: %v %s", err, msg)
	}
	b.Cleanup(func() { _ = eng.Remove(ctx, "occy-bench/app:v1") })
	var total int64
	for _, l := range a.Layers {
		total += int64(len(l))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	tmp := b.TempDir()
	for b.Loop() {
		src, err := dockerpush.Open(ctx, c, "occy-bench/app:v1", dockerpush.Options{TempDir: tmp})
		if err != nil {
			b.Fatal(err)
		}
		out := make(chan stage.Item, 2)
		p := pool.New().WithErrors()
		p.Go(func() error { defer close(out); return src.Emit(ctx, out) })
		dir := b.TempDir()
		for it := range out {
			if it.Kind != stage.KindLayer {
				continue
			}
			rc, err := it.Body.Open()
			if err != nil {
				b.Fatal(err)
			}
			w, _ := os.Create(filepath.Join(dir, it.Name))
			if _, err := io.Copy(w, rc); err != nil {
				b.Fatal(err)
			}
			w.Close()
			rc.Close()
			_ = it.Release()
		}
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
