package filter

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/stage"
)

// bigLayer writes a layer of about size bytes to dir: files of 1 KiB to
// 1 MiB, a few with xattrs and fractional times, as a real layer has.
func bigLayer(b *testing.B, dir string, size int64) (string, int64) {
	b.Helper()
	p := filepath.Join(dir, fmt.Sprintf("big-%d.tar", size))
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(rng.Uint32())
	}
	var written int64
	for i := 0; written < size; i++ {
		n := int64(1024) << rng.IntN(11) // 1 KiB .. 1 MiB
		h := &tar.Header{
			Name: fmt.Sprintf("usr/lib/pkg%03d/file%05d.so", i%100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: n,
			ModTime: time.Unix(1700000000, int64(i)*1000), Format: tar.FormatPAX,
		}
		if i%50 == 0 {
			h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
		}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(chunk[:n]); err != nil {
			b.Fatal(err)
		}
		written += n
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p, st.Size()
}

// benchSource emits a config and n layers, all the same file.
func benchSource(path string, size int64, n int) stage.Source {
	return sourceFunc(func(ctx context.Context, out chan<- stage.Item) error {
		ids := `"sha256:00"`
		for i := 1; i < n; i++ {
			ids += `, "sha256:00"`
		}
		if err := stage.Send(ctx, out, stage.Item{Seq: -1, Kind: stage.KindConfig, Name: "c.json",
			Data: []byte(`{"rootfs": {"type": "layers", "diff_ids": [` + ids + `]}}`)}); err != nil {
			return err
		}
		for i := range n {
			it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: fmt.Sprint(i), DiffID: digest.Digest("sha256:00"),
				Size: size, Body: &stage.FileBody{Path: path}}
			if err := stage.Send(ctx, out, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkNormalizeTimestamps measures normalize-timestamps throughput
// through the engine: read the layer, rewrite, hash, write the temp file.
func BenchmarkNormalizeTimestamps(b *testing.B) {
	dir := b.TempDir()
	for _, bc := range []struct {
		layers, parallel int
		size             int64
	}{
		{1, 1, 256 << 20},
		{4, 2, 64 << 20},
	} {
		b.Run(fmt.Sprintf("layers=%d/size=%dMiB/j=%d", bc.layers, bc.size>>20, bc.parallel), func(b *testing.B) {
			path, size := bigLayer(b, dir, bc.size)
			b.SetBytes(size * int64(bc.layers))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				nt := NewNormalizeTimestamps(0, Options{TempDir: dir, Parallel: bc.parallel})
				if _, err := stage.Run(context.Background(), benchSource(path, size, bc.layers), []stage.Stage{nt}, Discard{}, stage.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
