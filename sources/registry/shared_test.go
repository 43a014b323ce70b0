package registry_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/sinks/dir"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
)

// seedShared pushes 8 images in 2 groups: 1 layer common to all, 2 per
// group, 1 of their own.
func seedShared(t *testing.T) (*testquay.Server, *testregistry.Registry, testquay.Seeded) {
	t.Helper()
	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{})
	s, err := q.Seed(context.Background(), reg, testquay.Corpus{Namespace: "ns", Images: 8, Groups: 2, Common: 1, Group: 2, Own: 1, Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	return q, reg, s
}

// TestBlobsShareIntoDir pulls every image at once into one dir: each layer
// is requested from the registry once, written once, and every image's
// manifest lists its layers.
func TestBlobsShareIntoDir(t *testing.T) {
	t.Parallel()
	for _, expand := range []bool{false, true} {
		q, reg, seeded := seedShared(t)
		tr := newTransport(t, reg, nil)
		tmp := t.TempDir()
		out := t.TempDir()
		w, err := dir.New(out, dir.Options{UniqueNames: true, Expand: expand, Parallel: 2})
		if err != nil {
			t.Fatal(err)
		}
		blobs := registrysrc.NewBlobs()
		p := pool.New().WithErrors().WithContext(context.Background())
		for _, im := range seeded.Images {
			p.Go(func(ctx context.Context) error {
				src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: im.Repo, Tag: im.Tag, Workers: 2, TempDir: tmp, Blobs: blobs})
				sink, err := w.Sink(src.Image())
				if err != nil {
					return err
				}
				_, err = stage.Run(ctx, src, nil, sink, stage.Options{Window: 2})
				return err
			})
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		gets := q.AllBlobGets()
		layers := map[digest.Digest]bool{}
		for _, im := range seeded.Images {
			for _, l := range im.Image.Layers {
				layers[l.Digest] = true
				if gets[l.Digest] != 1 {
					t.Errorf("expand=%v: layer %s fetched %d times, want 1", expand, l.Digest, gets[l.Digest])
				}
				b, err := os.ReadFile(filepath.Join(out, l.Digest.Encoded(), "layer.tar"))
				if err != nil || digest.FromBytes(b) != l.DiffID {
					t.Errorf("layer %s in the output: %v", l.Digest, err)
				}
			}
		}
		st := blobs.Stats()
		total := int64(8 * 4)
		if st.Fetched != int64(len(layers)) || st.Fetched+st.Shared+st.Skipped != total {
			t.Errorf("expand=%v: stats %+v, want %d fetched of %d requests", expand, st, len(layers), total)
		}
		if len(seeded.Shared) != 1+2*2 {
			t.Errorf("corpus shares %d layers", len(seeded.Shared))
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("temporary files left: %d", len(left))
		}
	}
}

// TestBlobsShareBodies pulls every image at once into sinks that keep
// nothing: layers that overlap in time share one transfer, and every image
// still gets every layer's right content.
func TestBlobsShareBodies(t *testing.T) {
	t.Parallel()
	_, reg, seeded := seedShared(t)
	tr := newTransport(t, reg, nil)
	tmp := t.TempDir()
	blobs := registrysrc.NewBlobs()
	cols := make([]*collector, len(seeded.Images))
	p := pool.New().WithErrors().WithContext(context.Background())
	for i, im := range seeded.Images {
		cols[i] = &collector{}
		p.Go(func(ctx context.Context) error {
			src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: im.Repo, Tag: im.Tag, Workers: 4, TempDir: tmp, Blobs: blobs})
			_, err := stage.Run(ctx, src, nil, cols[i], stage.Options{})
			return err
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, im := range seeded.Images {
		if d := cmp.Diff(want(im.Image), cols[i].res); d != "" {
			t.Errorf("image %s (-want +got):\n%s", im.Repo, d)
		}
	}
	if st := blobs.Stats(); st.Fetched+st.Shared != 8*4 || st.Skipped != 0 {
		t.Errorf("stats %+v", st)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %d", len(left))
	}
}
