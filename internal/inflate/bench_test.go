package inflate

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkGunzip inflates the same layer-like stream with each inflater.
func BenchmarkGunzip(b *testing.B) {
	raw := layerLike(b, 32<<20)
	gz := gzipOf(b, raw)
	for _, mode := range []string{ModeGo, ModeISAL} {
		b.Run(mode, func(b *testing.B) {
			z := force(b, mode)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				rc, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
