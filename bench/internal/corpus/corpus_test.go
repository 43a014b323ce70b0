package corpus

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tiny() Params {
	return Params{Images: 5, GroupSize: 2, BaseKB: 768, GroupKB: 256, ImageKB: 128, Seed: 7}
}

// TestDeterministic: two generations give the same corpus, byte for byte,
// and a second Load reads the cache instead.
func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	a, err := Load(ctx, t.TempDir(), tiny(), nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	b, err := Load(ctx, root, tiny(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.Images, b.Images); diff != "" {
		t.Fatalf("corpora differ (-a +b):\n%s", diff)
	}
	// The cache: remove a blob; a cached Load does not regenerate it.
	if err := os.Remove(b.Blob(b.Images[0].Config)); err != nil {
		t.Fatal(err)
	}
	c, err := Load(ctx, root, tiny(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Blob(c.Images[0].Config)); !os.IsNotExist(err) {
		t.Errorf("cached Load regenerated the corpus (stat: %v)", err)
	}
}

// TestShape: groups share base and group layers; layers hold files,
// symlinks, hardlinks and whiteouts; gzip ratio near 3:1.
func TestShape(t *testing.T) {
	c, err := Load(context.Background(), t.TempDir(), tiny(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Images) != 5 {
		t.Fatalf("%d images, want 5", len(c.Images))
	}
	blobs, err := UniqueBlobs(c.Images, c)
	if err != nil {
		t.Fatal(err)
	}
	// 2 base + 3 group + 5 own layers + 5 configs.
	if len(blobs) != 15 {
		t.Errorf("%d unique blobs, want 15", len(blobs))
	}
	if c.Images[0].Layers[2] != c.Images[1].Layers[2] || c.Images[1].Layers[2] == c.Images[2].Layers[2] {
		t.Errorf("group layers not shared within a group only: %v", c.Images)
	}
	var raw, gz int64
	types := map[byte]int{}
	whiteouts := 0
	for _, l := range blobs {
		if l.Raw == 0 {
			continue // a config
		}
		raw += l.Raw
		gz += l.Size
		f, err := os.Open(c.Blob(l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			types[h.Typeflag]++
			if len(h.Name) > 4 && (contains(h.Name, "/.wh.")) {
				whiteouts++
			}
		}
		f.Close()
	}
	r := float64(raw) / float64(gz)
	t.Logf("gzip ratio %.2f", r)
	if r < 2.3 || r > 4 {
		t.Errorf("gzip ratio %.2f, want near 3", r)
	}
	if types[tar.TypeReg] < 100 || types[tar.TypeSymlink] == 0 || types[tar.TypeLink] == 0 || types[tar.TypeDir] == 0 || whiteouts == 0 {
		t.Errorf("member types %v, %d whiteouts", types, whiteouts)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
