package tarball

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

// BenchmarkTarSink writes 8 layers of 16 MiB through the engine into an
// archive; bodies are files (as sources that spool give) or memory streams.
func BenchmarkTarSink(b *testing.B) {
	const layers, size = 8, 16 << 20
	for _, files := range []bool{true, false} {
		name := "body=stream"
		if files {
			name = "body=file"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			r := rand.New(rand.NewPCG(5, 6))
			items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: "config.json", Data: []byte(`{}`)}}
			for i := range layers {
				data := make([]byte, size)
				for j := range data {
					data[j] = byte(r.Uint32())
				}
				var body stage.Body = sinktest.MemBody(data, nil)
				if files {
					p := filepath.Join(dir, fmt.Sprint(i))
					if err := os.WriteFile(p, data, 0o644); err != nil {
						b.Fatal(err)
					}
					body = &stage.FileBody{Path: p}
				}
				items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: fmt.Sprintf("layer%02d", i), Size: size, Body: body})
			}
			dest := filepath.Join(b.TempDir(), "image.tar")
			b.SetBytes(layers * size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				w, err := New(dest, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := run(context.Background(), w, items); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.Remove(dest); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
