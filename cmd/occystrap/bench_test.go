package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// These benchmarks run the whole CLI (run()) as a user would; b.SetBytes is
// the uncompressed size of the image's layers.

// BenchmarkTarToDir: a docker-save archive of 8 layers × 24 MiB into a fresh
// dir:// each iteration.
func BenchmarkTarToDir(b *testing.B) {
	const layers, size = 8, 24 << 20
	img := fixture.Image{Name: "bench/app", Tag: "v1"}
	for i := range layers {
		img.Layers = append(img.Layers, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data/%d", i), size, uint64(i))})
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "image.tar")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := fixture.WriteLegacyArchive(f, img); err != nil {
		b.Fatal(err)
	}
	f.Close()
	for _, j := range []int{1, 4} {
		b.Run(fmt.Sprintf("j=%d", j), func(b *testing.B) {
			b.SetBytes(layers * size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", j, i))
				var stderr bytes.Buffer
				if code := run([]string{"--log-format", "console", "--no-verify", "-j", fmt.Sprint(j), "process", "tar://" + src, "dir://" + out}, &bytes.Buffer{}, &stderr); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRegistryToDir: a 10-layer image (4 MiB of incompressible data per
// layer) over TLS+HTTP/2 with 20 ms added to every request, into a fresh
// dir:// each iteration.
func BenchmarkRegistryToDir(b *testing.B) {
	const layers, size = 10, 4 << 20
	reg := testregistry.Start(b, testregistry.Options{Auth: testregistry.AuthToken, Wrap: testregistry.Latency(20 * time.Millisecond)})
	ca := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw}), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SSL_CERT_FILE", ca)
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 3, Layers: layers, LayerSize: size})
	if err != nil {
		b.Fatal(err)
	}
	if err := reg.Push(context.Background(), "bench/app", "v1", img); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range img.Layers {
		total += int64(len(l.Tar))
	}
	dir := b.TempDir()
	for _, j := range []int{1, 8} {
		b.Run(fmt.Sprintf("j=%d", j), func(b *testing.B) {
			b.SetBytes(total)
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", j, i))
				var stderr bytes.Buffer
				if code := run([]string{"--log-format", "console", "--no-verify", "-j", fmt.Sprint(j), "process", "registry://" + reg.Host + "/bench/app:v1", "dir://" + out}, &bytes.Buffer{}, &stderr); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
				b.StopTimer()
				os.RemoveAll(out)
				b.StartTimer()
			}
		})
	}
}
