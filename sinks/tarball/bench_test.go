package tarball

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/stage/stagetest"
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
			items := stagetest.BenchItems(b, layers, size, files)
			dest := filepath.Join(b.TempDir(), "image.tar")
			b.SetBytes(layers * size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				w, err := New(dest, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := stagetest.WriteImage(context.Background(), w, img, items); err != nil {
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
