package tarball

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConformance runs the sink contract's suite on tar://; the archive's
// members (name, type, mode, size, sha256) are what is compared.
func TestConformance(t *testing.T) {
	paths := map[stage.Output]string{}
	stagetest.RunSinkConformance(t, stagetest.SinkSuite{
		New: func(t *testing.T) stage.Output {
			p := filepath.Join(t.TempDir(), "image.tar")
			w, err := New(p, Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			paths[w] = p
			return w
		},
		View: func(t *testing.T, out stage.Output, _ stage.Image) []string {
			return members(t, paths[out])
		},
	})
}

// members lists an archive's members in archive order.
func members(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		out = append(out, fmt.Sprintf("%s %c %04o %d %s", h.Name, h.Typeflag, h.Mode, h.Size, stagetest.Hex(b)))
	}
}
