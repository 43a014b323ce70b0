//go:build cgo && isal

package inflate

import (
	"bytes"
	"context"
	"testing"
)

// FuzzCgoMatchesGo: for any input, libisal in process and Go give the
// same bytes, or both fail. Each input is tried as it is and, gzipped
// (as one member, or as two), with one byte changed (at pos, xor mask),
// so that corrupt blocks, headers and trailers of valid streams are met
// often.
func FuzzCgoMatchesGo(f *testing.F) {
	small := layerLike(f, 20<<10)
	gz := gzipOf(f, small)
	for _, seed := range [][]byte{
		gz, gzipOf(f, nil), gzipOf(f, small[:100], small[100:], nil),
		gz[:len(gz)/2], gz[:len(gz)-3], gz[:5], append(bytes.Clone(gz), 0, 0, 0, 0),
		append(bytes.Clone(gz), "garbage"...), append(bytes.Clone(gz), gz[:12]...), {}, []byte("not gzip"),
	} {
		f.Add(seed, uint16(0), byte(0))
	}
	f.Add(small[:3000], uint16(20), byte(0x40))
	f.Add(small[:3000], uint16(9), byte(0x04))
	goZ := &Inflater{}
	cgoZ, err := New(context.Background(), ModeISAL)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, pos uint16, xor byte) {
		half := len(in) / 2
		for _, stream := range [][]byte{in, gzipOf(t, in), gzipOf(t, in[:half], in[half:])} {
			if xor != 0 && len(stream) > 0 {
				stream = bytes.Clone(stream)
				stream[int(pos)%len(stream)] ^= xor
			}
			want, werr := gunzip(context.Background(), goZ, stream)
			got, gerr := gunzip(context.Background(), cgoZ, stream)
			switch {
			case (werr == nil) != (gerr == nil):
				t.Fatalf("go: %d bytes, %v; isal-cgo: %d bytes, %v", len(want), werr, len(got), gerr)
			case werr == nil && !bytes.Equal(got, want):
				t.Fatalf("isal-cgo gave %d bytes, go %d (differ)", len(got), len(want))
			}
		}
	})
}
