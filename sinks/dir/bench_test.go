package dir

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/internal/sinktest"
	"github.com/occystrap/occystrap/stage"
)

const (
	benchLayers    = 8
	benchLayerSize = 16 << 20
)

// benchItems returns an image of benchLayers layers of benchLayerSize bytes.
// With files, each body is a file on disk (as sources that spool give);
// otherwise a stream from memory.
func benchItems(b *testing.B, files bool) []stage.Item {
	b.Helper()
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: "config.json", Data: []byte(`{}`)}}
	for i := range benchLayers {
		data := make([]byte, benchLayerSize)
		for j := 0; j < len(data); j += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		name := fmt.Sprintf("layer%02d", i)
		var body stage.Body
		if files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			body = &stage.FileBody{Path: p}
		} else {
			body = sinktest.MemBody(data, nil)
		}
		items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: name, Size: benchLayerSize, Body: body})
	}
	return items
}

// BenchmarkDirSink writes 8 layers of 16 MiB through the engine into a fresh
// directory per iteration.
func BenchmarkDirSink(b *testing.B) {
	for _, files := range []bool{true, false} {
		for _, parallel := range []int{1, 4} {
			name := fmt.Sprintf("body=stream/j=%d", parallel)
			if files {
				name = fmt.Sprintf("body=file/j=%d", parallel)
			}
			b.Run(name, func(b *testing.B) {
				items := benchItems(b, files)
				root := b.TempDir()
				b.SetBytes(benchLayers * benchLayerSize)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					out := filepath.Join(root, fmt.Sprint(i))
					w, err := New(out, Options{Parallel: parallel})
					if err != nil {
						b.Fatal(err)
					}
					sink, err := w.Sink(img)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := stage.Run(context.Background(), &sinktest.Source{Items: items}, nil, sink, stage.Options{}); err != nil {
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
}
