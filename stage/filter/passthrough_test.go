package filter

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/tartest"
	"github.com/occystrap/occystrap/stage"
)

var fixtureImage = stage.Image{Name: "fixture/app", Tag: "v1"}

// searchImage has a layer in memory, one in a file, and a skipped one.
func searchImage() *testImage {
	return newImage(
		layerSpec{data: tartest.Layer()},
		layerSpec{data: simpleLayer(), file: true},
		layerSpec{data: fixture.RawTar(fixture.Layer{{Name: "skipped.conf"}}), skipped: true},
	)
}

// checkUnchanged checks that a passthrough stage forwarded every item as it
// came.
func checkUnchanged(t *testing.T, ti *testImage, g got) {
	t.Helper()
	if string(g.config.Data) != string(ti.config) || g.config.Name != sha(ti.config)+".json" {
		t.Errorf("config changed: %s %s", g.config.Name, g.config.Data)
	}
	for i, l := range ti.layers {
		it := layerOf(g, i)
		if it.Name == "" {
			t.Errorf("layer %d not forwarded", i)
			continue
		}
		if l.skipped != (it.Body == nil) {
			t.Errorf("layer %d: skipped %v, body %v", i, l.skipped, it.Body)
		}
		if !l.skipped && !bytes.Equal(g.contents[i], l.data) {
			t.Errorf("layer %d content changed", i)
		}
	}
	if ti.released.Load() != ti.bodies {
		t.Errorf("%d of %d source bodies released", ti.released.Load(), ti.bodies)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts SearchOptions
		want string
	}{
		{"glob", SearchOptions{Pattern: "*.conf"}, "Layer: layer0\n" +
			"  etc/plain.conf (file, 6 bytes)\n" +
			"  opt/app/.wh.old.conf (file, 0 bytes)\n" +
			"\n" +
			"Layer: layer1\n" +
			"  app/app.conf (file, 4 bytes)\n" +
			"\n" +
			"Found 3 matches in 2 layers.\n"},
		{"script friendly", SearchOptions{Pattern: "*.conf", ScriptFriendly: true},
			"fixture/app:v1:layer0:etc/plain.conf\n" +
				"fixture/app:v1:layer0:opt/app/.wh.old.conf\n" +
				"fixture/app:v1:layer1:app/app.conf\n"},
		{"links by base name", SearchOptions{Pattern: "*sh"}, "Layer: layer0\n" +
			"  bin/sh -> busybox (symlink)\n" +
			"  bin/ash -> bin/busybox (hardlink)\n" +
			"\n" +
			"Found 2 matches in 1 layer.\n"},
		{"devices", SearchOptions{Pattern: "dev/*"}, "Layer: layer0\n" +
			"  dev/fifo (fifo)\n" +
			"  dev/null (character device)\n" +
			"  dev/sda (block device)\n" +
			"\n" +
			"Found 3 matches in 1 layer.\n"},
		{"directory without slash", SearchOptions{Pattern: "etc"}, "Layer: layer0\n" +
			"  etc (directory)\n" +
			"\n" +
			"Found 1 match in 1 layer.\n"},
		{"star crosses slash", SearchOptions{Pattern: "a*n"}, "Layer: layer1\n" +
			"  app/run (file, 10 bytes)\n" +
			"\n" +
			"Found 1 match in 1 layer.\n"},
		{"regex, sparse and long names", SearchOptions{Pattern: `sparse\.(img|old)$|f{120}|été`, Regex: true}, "Layer: layer0\n" +
			"  " + tartest.LongBase + " (file, 8 bytes)\n" +
			"  données/été.txt (file, 5 bytes)\n" +
			"  var/sparse.img (file, 10000 bytes)\n" +
			"  var/sparse.old (file, 4096 bytes)\n" +
			"\n" +
			"Found 4 matches in 1 layer.\n"},
		{"no match", SearchOptions{Pattern: "nothing*"}, "No matches found.\n"},
		{"no match, script friendly", SearchOptions{Pattern: "nothing*", ScriptFriendly: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			tt.opts.Parallel = 3
			s, err := NewSearch(fixtureImage, &out, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ti := searchImage()
			g, err := run(t, ti, s)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			checkUnchanged(t, ti, g)
			if p := s.Properties(); p.ChangesContent || !p.NeedsAllLayers {
				t.Error("search's capabilities are wrong")
			}
		})
	}
}

func TestSearchOnlyWithDiscard(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, err := NewSearch(fixtureImage, &out, SearchOptions{Pattern: "*run", ScriptFriendly: true, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	ti := searchImage()
	if _, err := stage.Run(context.Background(), ti.source(t), []stage.Stage{s}, Discard{}, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "fixture/app:v1:layer1:app/run\n" {
		t.Errorf("output %q", got)
	}
	if ti.released.Load() != ti.bodies {
		t.Errorf("%d of %d bodies released", ti.released.Load(), ti.bodies)
	}
}

func TestSearchErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewSearch(fixtureImage, &bytes.Buffer{}, SearchOptions{Pattern: "[", Regex: true}); err == nil ||
		!strings.Contains(err.Error(), `"["`) {
		t.Errorf("bad regex: error %v", err)
	}
	// A broken layer is an error, reported after the results: what it had
	// before the break, and what the other layers have, is printed first.
	var out bytes.Buffer
	s, err := NewSearch(fixtureImage, &out, SearchOptions{Pattern: "etc*"})
	if err != nil {
		t.Fatal(err)
	}
	ti := newImage(layerSpec{data: tartest.Layer()[:3000]}, layerSpec{data: fixture.RawTar(fixture.Layer{{Name: "etc/later"}})})
	if _, err := run(t, ti, s); !errors.Is(err, ErrCorruptLayer) || !strings.Contains(err.Error(), "layer 0 (layer0)") {
		t.Errorf("run = %v, want ErrCorruptLayer naming layer 0", err)
	}
	if want := "Layer: layer0\n  etc (directory)\n  etc/plain.conf (file, 6 bytes)\n\nLayer: layer1\n  etc/later (file, 0 bytes)\n\nFound 3 matches in 2 layers.\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

// TestSearchQuotesNames: member names and link targets with control
// characters (an escape sequence, a newline forging an output line) are
// printed escaped, in both forms of output.
func TestSearchQuotesNames(t *testing.T) {
	t.Parallel()
	layer := fixture.RawTar(fixture.Layer{
		fixture.Entry{Name: "etc/\x1b[2J\x1b[31mred"},
		fixture.Entry{Name: "etc/x\nfixture/app:v1:layer0:etc/forged"},
		fixture.Entry{Name: "etc/link", Type: tar.TypeSymlink, Link: "\x1b]0;title\a"},
	})
	for _, script := range []bool{true, false} {
		var out bytes.Buffer
		s, err := NewSearch(fixtureImage, &out, SearchOptions{Pattern: "etc/*", ScriptFriendly: script})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, newImage(layerSpec{data: layer}), s); err != nil {
			t.Fatal(err)
		}
		want := "fixture/app:v1:layer0:etc/\\x1b[2J\\x1b[31mred\n" +
			"fixture/app:v1:layer0:etc/x\\nfixture/app:v1:layer0:etc/forged\n" +
			"fixture/app:v1:layer0:etc/link\n"
		if !script {
			want = "Layer: layer0\n  etc/\\x1b[2J\\x1b[31mred (file, 0 bytes)\n" +
				"  etc/x\\nfixture/app:v1:layer0:etc/forged (file, 0 bytes)\n" +
				"  etc/link -> \\x1b]0;title\\x07 (symlink)\n\nFound 3 matches in 1 layer.\n"
		}
		if out.String() != want {
			t.Errorf("script %v: output %q, want %q", script, out.String(), want)
		}
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "inspect.jsonl")
	if err := os.WriteFile(path, []byte("{\"earlier\": true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ti := newImage(
		layerSpec{data: tartest.Layer(), name: "sha256:aa"},
		layerSpec{data: simpleLayer(), file: true, name: "bb"},
		layerSpec{data: fixture.RawTar(fixture.Layer{{Name: "x"}}), skipped: true, name: "cc"},
	)
	f := NewInspect(fixtureImage, path, 2)
	g, err := run(t, ti, f)
	if err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, ti, g)
	if f.Properties().ChangesContent {
		t.Error("inspect says it changes content")
	}
	// Run an image with no tag and no history too: its line follows.
	ti2 := &testImage{config: []byte(`{"rootfs":{}}`), layers: []layerSpec{{data: simpleLayer(), name: "dd"}}}
	if _, err := run(t, ti2, NewInspect(stage.Image{Name: "solo"}, path, 1)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"earlier\": true}\n" +
		`{"layers": [` +
		`{"Comment": "", "Created": 0, "CreatedBy": "", "Id": "sha256:cc", "Size": 0, "Tags": ["fixture/app:v1"]}, ` +
		`{"Comment": "", "Created": 1704164647, "CreatedBy": "COPY app /app", "Id": "sha256:bb", "Size": ` + itoa(len(simpleLayer())) + `, "Tags": null}, ` +
		`{"Comment": "base", "Created": 1704164645, "CreatedBy": "ADD rootfs.tar /", "Id": "sha256:aa", "Size": ` + itoa(len(tartest.Layer())) + `, "Tags": null}` +
		`], "name": "fixture/app:v1"}` + "\n" +
		`{"layers": [{"Comment": "", "Created": 0, "CreatedBy": "", "Id": "sha256:dd", "Size": ` + itoa(len(simpleLayer())) + `, "Tags": null}], "name": "solo"}` + "\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("inspect file (-want +got):\n%s", diff)
	}
}

func TestCreatedUnix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{`"2024-01-02T03:04:05Z"`, 1704164645},
		{`"2024-01-02T03:04:05.999999999Z"`, 1704164645},
		{`"2024-01-02T04:04:05+01:00"`, 1704164645},
		{`"2024-01-02T03:04:05"`, 1704164645},
		{`"1969-12-31T23:59:59.5Z"`, 0},
		{`"2024-01-02"`, 1704153600},
		{`1704164645.9`, 1704164645},
		{`1704164645`, 1704164645},
		{`"yesterday"`, 0},
		{`null`, 0},
	}
	for _, tt := range tests {
		o := objWith(t, tt.in)
		if got := createdUnix(o); got != tt.want {
			t.Errorf("createdUnix(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
