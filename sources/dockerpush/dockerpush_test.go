package dockerpush_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testdocker"
	dockersrc "github.com/occystrap/occystrap/sources/docker"
	"github.com/occystrap/occystrap/sources/dockerpush"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoTags lists every name the engine has for any image.
func repoTags(t *testing.T, c *dockerclient.Client, ref string) []string {
	t.Helper()
	img, err := c.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return img.RepoTags
}

func TestEmitFromEngine(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	ctx := context.Background()
	tests := []struct {
		name string
		img  fixture.Image
		skip map[int]bool // layers the sink has
	}{
		{name: "five layers", img: testdocker.Image("occy-push/five", "a", "b", "c", "d", "e")},
		{name: "one layer", img: testdocker.Image("occy-push/one", "only")},
		// Pushed once, sent twice.
		{name: "repeated layer", img: testdocker.Image("occy-push/repeat", "a", "b", "a", "c")},
		{name: "sink has some", img: testdocker.Image("occy-push/skip", "a", "b", "c"), skip: map[int]bool{0: true, 2: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := eng.Seed(t, tc.img)
			ref := tc.img.Name + ":v1"
			tmp := t.TempDir()
			src, err := dockerpush.Open(ctx, c, ref, dockerpush.Options{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(stage.Image{Name: tc.img.Name, Tag: "v1"}, src.Image()); d != "" {
				t.Errorf("Image (-want +got):\n%s", d)
			}
			has := map[string]bool{}
			for i := range tc.skip {
				has[a.DiffIDs[i].Encoded()] = true
			}
			src.Wire(stage.Wiring{Has: func(name string) bool { return has[name] }})
			items, err := testdocker.Collect(t, src)
			if err != nil {
				t.Fatalf("Emit: %v", err)
			}
			want := []testdocker.Got{{Kind: stage.KindConfig, Seq: -1, Name: a.ConfigDigest.Encoded() + ".json", Sum: a.ConfigDigest}}
			for i, d := range a.DiffIDs {
				g := testdocker.Got{Kind: stage.KindLayer, Seq: i, Name: d.Encoded(), DiffID: d, Sum: d}
				if tc.skip[i] {
					g.Sum, g.Skipped = "", true
				}
				want = append(want, g)
			}
			if d := cmp.Diff(want, items); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("files left in the temp dir: %v", left)
			}
			// The temporary 127.0.0.1:PORT/... name is gone; the image's own
			// name stays.
			if d := cmp.Diff([]string{ref}, repoTags(t, c, ref)); d != "" {
				t.Errorf("RepoTags after the run (-want +got):\n%s", d)
			}
		})
	}
}

// TestSameAsDockerInput: dockerpush:// gives the same config and layers as
// docker:// does, layer for layer; only the names differ as the original's
// do (docker save's directories there, DiffID hex here).
func TestSameAsDockerInput(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	ctx := context.Background()
	img := fixture.Image{Name: "occy-push/same", Tag: "v1"}
	for i := range 3 {
		img.Layers = append(img.Layers, fixture.Layer{fixture.Dir("d", 0o755), fixture.RandomFile("d/f"+string(rune('a'+i)), 3<<20, uint64(i))})
	}
	a := eng.Seed(t, img)

	ds, err := dockersrc.Open(ctx, c, "occy-push/same:v1", dockersrc.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fromDocker, err := testdocker.Collect(t, ds)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	ps, err := dockerpush.Open(ctx, c, "occy-push/same:v1", dockerpush.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fromPush, err := testdocker.Collect(t, ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromPush) != len(a.DiffIDs)+1 {
		t.Fatalf("dockerpush sent %d items, want %d", len(fromPush), len(a.DiffIDs)+1)
	}
	for i := range fromDocker {
		fromDocker[i].Name = ""
		fromPush[i].Name = ""
	}
	if d := cmp.Diff(fromDocker, fromPush); d != "" {
		t.Errorf("dockerpush vs docker (-docker +dockerpush):\n%s", d)
	}
}

func TestNotFound(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	_, err := dockerpush.Open(context.Background(), c, "occy-push/absent:nope", dockerpush.Options{})
	if !errors.Is(err, dockerpush.ErrImageNotFound) || err.Error() != "Image not found: occy-push/absent:nope" {
		t.Errorf("err = %v, want Image not found: occy-push/absent:nope", err)
	}
}

// TestRemovedAfterOpen: the image vanishing between Open and Emit fails
// the tag step with the same error.
func TestRemovedAfterOpen(t *testing.T) {
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	ctx := context.Background()
	img := testdocker.Image("occy-push/gone", "a")
	eng.Seed(t, img)
	src, err := dockerpush.Open(ctx, c, "occy-push/gone:v1", dockerpush.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Remove(ctx, "occy-push/gone:v1"); err != nil {
		t.Fatal(err)
	}
	_, err = testdocker.Collect(t, src)
	if !errors.Is(err, dockerpush.ErrImageNotFound) || err.Error() != "Image not found: occy-push/gone:v1" {
		t.Errorf("err = %v, want Image not found: occy-push/gone:v1", err)
	}
}
