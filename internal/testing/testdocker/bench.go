package testdocker

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// Source is an engine input as BenchEmitToFiles runs it.
type Source interface {
	Emitter
	Close() error
}

// BenchEmitToFiles is the benchmark the engine inputs share: it loads a
// ~100 MB image (5 layers of 20 MB of random data) into the engine, then
// each round opens it with open (spooling into tmp), and copies every layer
// it emits into a file, as dir:// does. Bytes per op are the layers' size.
func BenchEmitToFiles(b *testing.B, open func(ctx context.Context, c *dockerclient.Client, ref, tmp string) (Source, error)) {
	eng := Require(b)
	ctx := context.Background()
	c := dockerclient.New(eng.Socket)
	b.Cleanup(c.CloseIdle)
	img := fixture.Image{Name: "occy-bench/app", Tag: "v1"}
	for i := range 5 {
		img.Layers = append(img.Layers, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data/%d", i), 20<<20, uint64(i))})
	}
	a := eng.Seed(b, img)
	var total int64
	for _, l := range a.Layers {
		total += int64(len(l))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	tmp := b.TempDir()
	for b.Loop() {
		src, err := open(ctx, c, "occy-bench/app:v1", tmp)
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
		if err := src.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
