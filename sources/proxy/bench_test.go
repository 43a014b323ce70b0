package proxy

import (
	"context"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// BenchmarkPush pushes a 4-layer, 48 MiB image (incompressible, gzip)
// from one in-process registry to another, directly or through a proxy
// (no filter: the proxy receives the blobs, then copies them downstream).
// Each iteration gets a fresh proxy and downstream; the registries store
// blobs on disk (the in-memory driver dominates the time otherwise).
func BenchmarkPush(b *testing.B) {
	const layers, size = 4, 12 << 20
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 1, Layers: layers, LayerSize: size})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	origin := testregistry.Start(b, testregistry.Options{Plain: true, RootDirectory: b.TempDir()})
	if err := origin.Push(ctx, "bench/app", "v1", img); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"direct", "proxy"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(layers * size)
			b.ReportAllocs()
			tr := newTransport(b)
			for b.Loop() {
				b.StopTimer()
				down := testregistry.Start(b, testregistry.Options{Plain: true, RootDirectory: b.TempDir()})
				host := down.Host
				stop := func() {}
				if mode == "proxy" {
					srv, err := New(Options{Transport: tr, Downstream: down.Host, DownstreamRegistry: plain, TempDir: b.TempDir()})
					if err != nil {
						b.Fatal(err)
					}
					host, stop = serveBench(b, srv)
				}
				b.StartTimer()
				if err := copyImage(ctx, tr, origin.Host, "bench/app", "v1", host, "bench/app", "v1"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				stop()
				b.StartTimer()
			}
		})
	}
}
