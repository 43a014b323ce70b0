package registry_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/conc/pool"

	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
)

// TestPrefetchThenSource fetches every image ahead, then runs its source:
// the source makes no request of its own (manifest, config and layers come
// from the prefetch), every image gets its right content, each layer is
// downloaded once, and releasing the prefetches removes every temporary
// file.
func TestPrefetchThenSource(t *testing.T) {
	t.Parallel()
	for _, layers := range []bool{true, false} {
		q, reg, seeded := seedShared(t)
		tr := newTransport(t, reg, nil)
		tmp := t.TempDir()
		blobs := registrysrc.NewBlobs()
		slots := make(chan struct{}, 2)
		budget := registrysrc.NewBudget(1 << 30)
		var resolved atomic.Int64
		held := make([]*registrysrc.Prefetched, len(seeded.Images))
		p := pool.New()
		for i, im := range seeded.Images {
			p.Go(func() {
				held[i] = blobs.Prefetch(context.Background(), tr, registrysrc.Options{Host: reg.Host, Repo: im.Repo, Tag: im.Tag, Workers: 2, TempDir: tmp},
					registrysrc.PrefetchOptions{Layers: layers, Slots: slots, Budget: budget, Resolved: func() { resolved.Add(1) }})
			})
		}
		p.Wait()
		if resolved.Load() != int64(len(seeded.Images)) {
			t.Errorf("layers=%v: resolved called %d times, want %d", layers, resolved.Load(), len(seeded.Images))
		}
		manifests, blobGets := q.ManifestGets(), sum(q.AllBlobGets())
		for i, im := range seeded.Images {
			src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: im.Repo, Tag: im.Tag, Workers: 2, TempDir: tmp, Blobs: blobs})
			c := &collector{}
			if _, err := stage.Run(context.Background(), src, nil, c, stage.Options{}); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want(im.Image), c.res); d != "" {
				t.Errorf("layers=%v: image %s (-want +got):\n%s", layers, im.Repo, d)
			}
			held[i].Release()
			held[i].Release() // twice is harmless
		}
		if got := q.ManifestGets(); got != manifests {
			t.Errorf("layers=%v: sources fetched %d manifests after the prefetch, want 0", layers, got-manifests)
		}
		if gets := q.AllBlobGets(); layers {
			for d, n := range gets {
				if n != 1 {
					t.Errorf("layers=%v: blob %s fetched %d times, want 1", layers, d, n)
				}
			}
			if sum(gets) != blobGets {
				t.Errorf("layers=%v: %d blob requests after the prefetch, want 0", layers, sum(gets)-blobGets)
			}
		} else if blobGets != len(seeded.Images) { // the configs only
			t.Errorf("layers=%v: the prefetch made %d blob requests, want %d configs", layers, blobGets, len(seeded.Images))
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("layers=%v: temporary files left: %d", layers, len(left))
		}
	}
}

func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestPrefetchBudget: a prefetch waits for the bytes that an earlier one
// holds until that one is released, after its manifest and config. (A
// budget smaller than one image's layers stalls that image's prefetch
// until it is released: the image's source then fetches the rest.)
func TestPrefetchBudget(t *testing.T) {
	t.Parallel()
	_, reg, seeded := seedShared(t)
	tr := newTransport(t, reg, nil)
	tmp := t.TempDir()
	blobs := registrysrc.NewBlobs()
	var size int64 // the larger image's layers: not both at once
	for _, im := range seeded.Images[:2] {
		var n int64
		for _, l := range im.Image.Layers {
			n += int64(len(l.Blob))
		}
		size = max(size, n)
	}
	budget := registrysrc.NewBudget(size)
	opts := func(i int) registrysrc.Options {
		im := seeded.Images[i]
		return registrysrc.Options{Host: reg.Host, Repo: im.Repo, Tag: im.Tag, Workers: 2, TempDir: tmp}
	}
	first := blobs.Prefetch(context.Background(), tr, opts(0), registrysrc.PrefetchOptions{Layers: true, Budget: budget})
	resolved := make(chan struct{})
	done := make(chan *registrysrc.Prefetched)
	p := pool.New()
	p.Go(func() {
		done <- blobs.Prefetch(context.Background(), tr, opts(1), registrysrc.PrefetchOptions{Layers: true, Budget: budget, Resolved: func() { close(resolved) }})
	})
	<-resolved
	select {
	case <-done:
		t.Error("the second prefetch finished while the first held the budget")
	default:
	}
	first.Release()
	second := <-done
	p.Wait()
	second.Release()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %d", len(left))
	}
}
