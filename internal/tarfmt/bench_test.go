package tarfmt

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkRewrite measures the tar rewrite alone, memory to io.Discard.
func BenchmarkRewrite(b *testing.B) {
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	data := bytes.Repeat([]byte("occystrap"), 64<<10/9)
	for i := range 512 {
		h := &tar.Header{Name: fmt.Sprintf("f/%d", i), Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1, 5), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	tf := func(m *Member) bool { m.Header.ModTime = time.Unix(0, 0); return true }
	b.SetBytes(int64(src.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Rewrite(io.Discard, bytes.NewReader(src.Bytes()), tf); err != nil {
			b.Fatal(err)
		}
	}
}
