package oci

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/sinks/dir"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

const (
	benchLayers   = 8
	benchFiles    = 256
	benchFileSize = 32 << 10
)

// benchLayerTars is benchLayers layers of benchFiles random files each,
// every layer overwriting half of the previous one's files.
func benchLayerTars(b *testing.B) (tars [][]byte, size int64) {
	r := rand.New(rand.NewPCG(5, 6))
	body := make([]byte, benchFileSize)
	for l := range benchLayers {
		var es []E
		for f := range benchFiles {
			for i := range body {
				body[i] = byte(r.Uint32())
			}
			es = append(es, E{Name: fmt.Sprintf("d%d/f%d", (f+l*benchFiles/2)%16, f+l*benchFiles/2), Body: string(body)})
		}
		t := fixture.LayerTar(es)
		tars = append(tars, t)
		size += int64(len(t))
	}
	return tars, size
}

type sinker interface {
	Sink(stage.Image) (stage.Sink, error)
}

// BenchmarkBundle writes an 8-layer image (64 MiB of files) through the
// engine as an oci:// bundle, and, for comparison, as dir://?expand=true
// (which also keeps every layer.tar).
func BenchmarkBundle(b *testing.B) {
	tars, size := benchLayerTars(b)
	mk := map[string]func(out string) (sinker, error){
		"oci":        func(out string) (sinker, error) { return New(out, Options{}) },
		"dir-expand": func(out string) (sinker, error) { return dir.New(out, dir.Options{Expand: true, Parallel: 4}) },
	}
	for _, name := range []string{"oci", "dir-expand"} {
		b.Run(name, func(b *testing.B) {
			root := b.TempDir()
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(root, fmt.Sprint(i))
				w, err := mk[name](out)
				if err != nil {
					b.Fatal(err)
				}
				s, err := w.Sink(img)
				if err != nil {
					b.Fatal(err)
				}
				if err := stagetest.Run(context.Background(), s, stagetest.Items([]byte(`{"config":{}}`), "c.json", tars, nil)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(out); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
