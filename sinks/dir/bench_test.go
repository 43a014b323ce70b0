package dir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/stage/stagetest"
)

const (
	benchLayers    = 8
	benchLayerSize = 16 << 20
)

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
				items := stagetest.BenchItems(b, benchLayers, benchLayerSize, files)
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
					if err := stagetest.WriteImage(context.Background(), w, img, items); err != nil {
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
