package testdocker

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/fixture"
)

// Image is a small test image NAME:v1 with one layer per entry of layers:
// the directory d and, in it, a file named as the entry holding the entry
// and a newline. A name repeated gives the same layer again.
func Image(name string, layers ...string) fixture.Image {
	img := fixture.Image{Name: name, Tag: "v1"}
	for _, l := range layers {
		img.Layers = append(img.Layers, fixture.Layer{fixture.Dir("d", 0o755), fixture.File("d/"+l, l+"\n", 0o644)})
	}
	return img
}

// Seed loads img into the engine from the docker-save archive
// fixture.WriteLegacyArchive makes of it, removes NAME:TAG when the test
// ends, and returns the archive's description.
func (e *Engine) Seed(t testing.TB, img fixture.Image) *fixture.Archive {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "in.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	a, err := fixture.WriteLegacyArchive(f, img)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if msg, err := e.Load(ctx, archive); err != nil {
		t.Fatalf("load: %v %s", err, msg)
	}
	t.Cleanup(func() { _ = e.Remove(ctx, img.Name+":"+img.Tag) })
	return a
}
