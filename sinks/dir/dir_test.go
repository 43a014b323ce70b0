package dir

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

type E = fixture.Entry

func TestMain(m *testing.M) {
	if spec := os.Getenv(catalogChildEnv); spec != "" {
		os.Exit(catalogChild(spec))
	}
	stagetest.Main(m)
}

var img = stage.Image{Name: "fixture/app", Tag: "v1"}

// sample is a three-layer image whose config and layers are fixed bytes.
func sample(t testing.TB) (config []byte, layers [][]byte) {
	t.Helper()
	layers = [][]byte{
		fixture.LayerTar(fixture.Layer{E{Name: "etc/", Type: tar.TypeDir}, E{Name: "etc/app.conf", Body: "one"}, E{Name: "opt/app/old.conf", Body: "old"}}),
		fixture.LayerTar(fixture.Layer{E{Name: "opt/app/.wh.old.conf"}, E{Name: "usr/bin/app", Body: "#!/bin/sh\n", Mode: 0o755}}),
		fixture.LayerTar(fixture.Layer{E{Name: "etc/app.conf", Body: "two"}, E{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"}}),
	}
	var ids []string
	for _, l := range layers {
		ids = append(ids, `"sha256:`+stagetest.Hex(l)+`"`)
	}
	config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[` + strings.Join(ids, ",") + `]},"config":{"Cmd":["/bin/app"]}}`)
	return config, layers
}

// newWriter is a Writer with opts into a fresh directory, returned too.
func newWriter(t *testing.T, opts Options) (string, *Writer) {
	t.Helper()
	out := t.TempDir()
	w, err := New(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, w
}

func fixtureItems(t testing.TB, rel *stagetest.Released) []stage.Item {
	config, layers := sample(t)
	return stagetest.Items(config, stagetest.Hex(config)+".json", layers, rel)
}

type order func([]stage.Item) []stage.Item

var orders = map[string]order{
	"config first": func(it []stage.Item) []stage.Item { return it },
	"config last":  func(it []stage.Item) []stage.Item { return append(append([]stage.Item{}, it[1:]...), it[0]) },
	"shuffled": func(it []stage.Item) []stage.Item {
		out := append([]stage.Item{}, it...)
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	},
	"layers reversed": func(it []stage.Item) []stage.Item {
		out := []stage.Item{}
		for i := len(it) - 1; i >= 1; i-- {
			out = append(out, it[i])
		}
		return append(out, it[0])
	},
}

// listingWithFiles is the normalized listing of dir followed by the text of
// its manifest and catalog files.
func listingWithFiles(t *testing.T, dir string) []string {
	t.Helper()
	out := stagetest.Listing(t, dir)
	matches, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, m := range matches {
		base := filepath.Base(m)
		if !strings.HasPrefix(base, "manifest") && base != "catalog.json" {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "--- "+base)
		out = append(out, strings.Split(string(b), "\n")...)
	}
	return out
}

func TestLayout(t *testing.T) {
	t.Parallel()
	config, layers := sample(t)
	cfgName := stagetest.Hex(config) + ".json"
	var layerPaths []string
	for _, l := range layers {
		layerPaths = append(layerPaths, stagetest.Hex(l)+"/layer.tar")
	}
	for _, unique := range []bool{false, true} {
		for name, ord := range orders {
			t.Run(fmt.Sprintf("unique=%v/%s", unique, name), func(t *testing.T) {
				t.Parallel()
				out, w := newWriter(t, Options{UniqueNames: unique, Parallel: 2})
				defer w.Close()
				var rel stagetest.Released
				if err := stagetest.WriteImage(context.Background(), w, img, ord(fixtureItems(t, &rel))); err != nil {
					t.Fatalf("run: %v", err)
				}
				if got := rel.Count(); got != int64(len(layers)) {
					t.Errorf("%d bodies released, want %d", got, len(layers))
				}
				golden := "layout"
				manifest := "manifest.json"
				want := manifestEntry{Config: cfgName, Layers: layerPaths, RepoTags: []string{"app:v1"}}
				if unique {
					golden, manifest = "layout-unique", "manifest-fixture_app-v1.json"
					want.ImageName = "fixture/app"
				}
				stagetest.Golden(t, golden, listingWithFiles(t, out))

				var got []manifestEntry
				stagetest.ReadJSON(t, filepath.Join(out, manifest), &got)
				if diff := cmp.Diff([]manifestEntry{want}, got); diff != "" {
					t.Errorf("manifest (-want +got):\n%s", diff)
				}
				var cat map[string]map[string]string
				stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &cat)
				if diff := cmp.Diff(map[string]map[string]string{"fixture/app": {"v1": manifest}}, cat); diff != "" {
					t.Errorf("catalog (-want +got):\n%s", diff)
				}
				if b, err := os.ReadFile(filepath.Join(out, cfgName)); err != nil || string(b) != string(config) {
					t.Errorf("config not written as fetched: %q, %v", b, err)
				}
			})
		}
	}
}

func TestConfigUnderSubdirectory(t *testing.T) {
	t.Parallel()
	out, w := newWriter(t, Options{})
	config, layers := sample(t)
	name := "blobs/sha256/" + stagetest.Hex(config)
	if err := stagetest.WriteImage(context.Background(), w, img, stagetest.Items(config, name, layers, nil)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != string(config) {
		t.Errorf("config at %s: %q, %v", name, b, err)
	}
	var got []manifestEntry
	stagetest.ReadJSON(t, filepath.Join(out, "manifest.json"), &got)
	if got[0].Config != name {
		t.Errorf("manifest Config = %q, want %q", got[0].Config, name)
	}
}

// expandLayers exercise every kind of entry and whiteout.
func expandLayers(t testing.TB) [][]byte {
	long := strings.Repeat("a-long-directory-name/", 7) + "and-a-long-file-name.txt"
	return [][]byte{
		fixture.LayerTar(fixture.Layer{E{Name: "a/", Type: tar.TypeDir}, E{Name: "a/x", Body: "x"}, E{Name: "a/sub/y", Body: "y"},
			E{Name: "ab/", Type: tar.TypeDir}, E{Name: "ab/z", Body: "z"},
			E{Name: "etc/old.conf", Body: "old"}, E{Name: "var/cache/f", Body: "cache"},
			E{Name: "usr/bin/tool", Body: "tool", Mode: 0o755},
			E{Name: "usr/bin/tool-link", Type: tar.TypeLink, Link: "usr/bin/tool"},
		}),
		fixture.LayerTar(fixture.Layer{E{Name: "a/", Type: tar.TypeDir}, E{Name: "a/.wh..wh..opq"}, E{Name: "a/new", Body: "new"},
			E{Name: "etc/.wh.old.conf"}, E{Name: "var/.wh.cache"},
			E{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
			E{Name: "etc/localtime", Type: tar.TypeSymlink, Link: "/usr/share/zoneinfo/UTC"},
			E{Name: long, Body: "pax"},
		}),
		fixture.LayerTar(fixture.Layer{E{Name: "usr/bin/.wh.tool"}, E{Name: "etc/app.conf", Body: "conf"}}),
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	for name, ord := range orders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, w := newWriter(t, Options{Expand: true, Parallel: 3})
			if !mustSink(t, w).Properties().Ordered {
				t.Fatal("Ordered is false with Expand")
			}
			items := stagetest.Items([]byte(`{}`), "c.json", expandLayers(t), nil)
			if err := stagetest.WriteImage(context.Background(), w, img, ord(items)); err != nil {
				t.Fatalf("run: %v", err)
			}
			tree := filepath.Join(out, "manifest")
			stagetest.Golden(t, "expand", stagetest.Listing(t, tree))
			if fi, err := os.Stat(tree); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("tree root: %v, %v; want a 0755 directory", fi, err)
			}
			for _, gone := range []string{"a/x", "a/sub", "etc/old.conf", "var/cache", "usr/bin/tool"} {
				if _, err := os.Lstat(filepath.Join(tree, gone)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s still in the tree (%v)", gone, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(tree, "ab/z")); err != nil || string(b) != "z" {
				t.Errorf("ab/z lost to a/'s opaque marker: %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(tree, "usr/bin/tool-link")); err != nil || string(b) != "tool" {
				t.Errorf("hard link lost its content: %q, %v", b, err)
			}
			assertNoTemp(t, out)
		})
	}
}

func mustSink(t *testing.T, w *Writer) stage.Sink {
	t.Helper()
	s, err := w.Sink(img)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNeedsOrderOnlyWithExpand(t *testing.T) {
	t.Parallel()
	w, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mustSink(t, w).Properties().Ordered {
		t.Error("Ordered is true without Expand")
	}
}

func TestExpandRefusesUnsafeEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		layer []E
		entry string
	}{
		{name: "dot dot", layer: []E{{Name: "../../escape", Body: "x"}}, entry: "../../escape"},
		{name: "absolute", layer: []E{{Name: "/etc/escape", Body: "x"}}, entry: "/etc/escape"},
		{name: "through symlink", layer: []E{{Name: "l", Type: tar.TypeSymlink, Link: "/"}, {Name: "l/escape", Body: "x"}}, entry: "l/escape"},
		{name: "symlink climbing out", layer: []E{{Name: "l", Type: tar.TypeSymlink, Link: "../../.."}}, entry: "l"},
		{name: "hard link out", layer: []E{{Name: "h", Type: tar.TypeLink, Link: "../../catalog.json"}}, entry: "h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			w, err := New(out, Options{Expand: true})
			if err != nil {
				t.Fatal(err)
			}
			layers := [][]byte{fixture.LayerTar(fixture.Layer{E{Name: "ok", Body: "ok"}}), fixture.LayerTar(tc.layer)}
			err = stagetest.WriteImage(context.Background(), w, img, stagetest.Items([]byte(`{}`), "c.json", layers, nil))
			if !errors.Is(err, extract.ErrUnsafeEntry) {
				t.Fatalf("run = %v, want ErrUnsafeEntry", err)
			}
			if !strings.Contains(err.Error(), `"`+tc.entry+`"`) {
				t.Errorf("error %q does not name %q", err, tc.entry)
			}
			for _, l := range stagetest.Listing(t, parent) {
				if !strings.HasPrefix(l, "out") {
					t.Errorf("written outside the output: %s", l)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "manifest")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("expanded tree left behind after a failure (%v)", err)
			}
			assertNoTemp(t, out)
		})
	}
}

// assertNoTemp fails if a temporary file or directory is left under dir.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), atomicfile.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestRerunSkipsExistingLayers(t *testing.T) {
	t.Parallel()
	out, w := newWriter(t, Options{})
	if err := stagetest.WriteImage(context.Background(), w, img, fixtureItems(t, nil)); err != nil {
		t.Fatal(err)
	}
	_, layers := sample(t)
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	before := map[string]os.FileInfo{}
	for _, l := range layers {
		name := stagetest.Hex(l)
		if !w.Has(name) {
			t.Fatalf("Has(%s) = false after writing it", name)
		}
		p := filepath.Join(out, name, "layer.tar")
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = fi
	}
	if w.Has("0000") || w.Has("../x") {
		t.Error("Has reports a layer that is not there")
	}

	// Second run: once with bodies (the sink skips them), once with the
	// source skipping them (nil bodies) as Has allows.
	for _, skipInSource := range []bool{false, true} {
		var rel stagetest.Released
		items := fixtureItems(t, &rel)
		if skipInSource {
			for i := range items {
				if items[i].Kind == stage.KindLayer {
					items[i].Body = nil
				}
			}
		}
		if err := stagetest.WriteImage(context.Background(), w, img, items); err != nil {
			t.Fatalf("rerun (skip in source %v): %v", skipInSource, err)
		}
		if !skipInSource && rel.Count() != int64(len(layers)) {
			t.Errorf("%d bodies released, want %d", rel.Count(), len(layers))
		}
		for name, fi := range before {
			now, err := os.Stat(filepath.Join(out, name, "layer.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(fi, now) || !now.ModTime().Equal(old) {
				t.Errorf("layer %s was rewritten on rerun (skip in source %v)", name, skipInSource)
			}
		}
		stagetest.Golden(t, "layout", listingWithFiles(t, out))
	}
}

func TestInterruptedWriteLeavesNothing(t *testing.T) {
	t.Parallel()
	out, w := newWriter(t, Options{})
	config, layers := sample(t)
	items := stagetest.Items(config, "c.json", layers, nil)
	broken := items[2]
	data := layers[1]
	var released stagetest.Released
	broken.Body = &stage.OpenerBody{
		OpenFunc: func() (io.ReadCloser, error) {
			return io.NopCloser(stagetest.FailingReader(data, len(data)/2, stagetest.ErrInjected)), nil
		},
		ReleaseFunc: func() error { stagetest.MemBody(nil, &released).Release(); return nil },
	}
	items[2] = broken
	err := stagetest.WriteImage(context.Background(), w, img, items)
	if !errors.Is(err, stagetest.ErrInjected) {
		t.Fatalf("run = %v, want the injected failure", err)
	}
	if _, err := os.Stat(filepath.Join(out, broken.Name, "layer.tar")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("layer.tar of the failed layer exists (%v)", err)
	}
	if w.Has(broken.Name) {
		t.Error("Has reports the failed layer")
	}
	if released.Count() != 1 {
		t.Errorf("failed layer's body released %d times, want 1", released.Count())
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest written after a failure (%v)", err)
	}
	assertNoTemp(t, out)
}

func TestConcurrentCatalog(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	const n = 16
	p := pool.New().WithErrors()
	for i := range n {
		p.Go(func() error {
			// A Writer each: the catalog lock is per path, not per Writer.
			w, err := New(out, Options{UniqueNames: true, Parallel: 2})
			if err != nil {
				return err
			}
			defer w.Close()
			im := stage.Image{Name: fmt.Sprintf("org/image-%02d", i), Tag: "latest"}
			return stagetest.WriteImage(context.Background(), w, im, fixtureItems(t, nil))
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var cat map[string]map[string]string
	stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &cat)
	want := map[string]map[string]string{}
	for i := range n {
		name := fmt.Sprintf("org/image-%02d", i)
		want[name] = map[string]string{"latest": fmt.Sprintf("manifest-org_image-%02d-latest.json", i)}
	}
	if diff := cmp.Diff(want, cat); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	assertNoTemp(t, out)
}

// catalogChildEnv makes the test binary a catalog writer for
// TestCatalogAcrossProcesses: "DIR PROC ROUNDS".
const catalogChildEnv = "OCCYSTRAP_TEST_CATALOG_CHILD"

// catalogChild adds ROUNDS catalog entries to DIR as process PROC, each
// through a Writer of its own (as separate runs would), and returns the exit
// code.
func catalogChild(spec string) int {
	var dir string
	var proc, rounds int
	if _, err := fmt.Sscan(spec, &dir, &proc, &rounds); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for r := range rounds {
		w, err := New(dir, Options{UniqueNames: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		im := stage.Image{Name: fmt.Sprintf("org/p%02d", proc), Tag: fmt.Sprintf("r%03d", r)}
		if err := w.addToCatalog(im, w.ManifestName(im)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		w.Close()
	}
	return 0
}

// Many processes adding to one catalog.json at once, many rounds each, as
// the shards of a bulk run do: no process loses another's entries.
func TestCatalogAcrossProcesses(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const procs, rounds = 8, 40
	p := pool.New().WithErrors()
	for i := range procs {
		p.Go(func() error {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", catalogChildEnv, out, i, rounds))
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("writer %d: %v: %s", i, err, b)
			}
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var cat map[string]map[string]string
	stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &cat)
	want := map[string]map[string]string{}
	for i := range procs {
		name := fmt.Sprintf("org/p%02d", i)
		want[name] = map[string]string{}
		for r := range rounds {
			tag := fmt.Sprintf("r%03d", r)
			want[name][tag] = fmt.Sprintf("manifest-org_p%02d-%s.json", i, tag)
		}
	}
	if diff := cmp.Diff(want, cat); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
}

func TestConsumeErrors(t *testing.T) {
	t.Parallel()
	config, layers := sample(t)
	tests := []struct {
		name  string
		items func() []stage.Item
		want  error
	}{
		{name: "no config", items: func() []stage.Item { return stagetest.Items(config, "c.json", layers, nil)[1:] }, want: ErrNoConfig},
		{name: "config escaping", items: func() []stage.Item { return stagetest.Items(config, "../c.json", layers, nil) }, want: ErrBadName},
		{name: "layer name absolute", items: func() []stage.Item {
			it := stagetest.Items(config, "c.json", layers, nil)
			it[1].Name = "/tmp/x"
			return it
		}, want: ErrBadName},
		{name: "skipped layer not there", items: func() []stage.Item {
			it := stagetest.Items(config, "c.json", layers, nil)
			it[2].Body = nil
			return it
		}, want: ErrMissingLayer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			w, err := New(filepath.Join(parent, "out"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := stagetest.WriteImage(context.Background(), w, img, tc.items()); !errors.Is(err, tc.want) {
				t.Errorf("run = %v, want %v", err, tc.want)
			}
			for _, l := range stagetest.Listing(t, parent) {
				if !strings.HasPrefix(l, "out") {
					t.Errorf("written outside the output: %s", l)
				}
			}
		})
	}
}

func TestSinkAfterClose(t *testing.T) {
	t.Parallel()
	w, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Sink(img); !errors.Is(err, ErrClosed) {
		t.Errorf("Sink after Close = %v, want ErrClosed", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	_, layers := sample(t)
	l1 := stagetest.Hex(layers[1])
	tests := []struct {
		name   string
		damage func(t *testing.T, out string)
		full   bool
		want   string // the start of the one problem expected, "" for none
	}{
		{name: "intact", damage: func(*testing.T, string) {}},
		{name: "intact full", damage: func(*testing.T, string) {}, full: true},
		{name: "manifest removed", damage: remove("manifest.json"), want: "Manifest file missing"},
		{name: "config removed", damage: remove("c.json"), want: "Config file missing"},
		{name: "layer removed", damage: remove(l1 + "/layer.tar"), want: "Layer file missing"},
		{name: "layer truncated", damage: func(t *testing.T, out string) {
			if err := os.Truncate(filepath.Join(out, l1, "layer.tar"), 100); err != nil {
				t.Fatal(err)
			}
		}, want: "Layer size mismatch"},
		{name: "layer garbage full", damage: garble(l1), full: true, want: "Layer /"},
		{name: "layer garbage fast", damage: garble(l1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, w := newWriter(t, Options{})
			config, layers := sample(t)
			if err := stagetest.WriteImage(context.Background(), w, img, stagetest.Items(config, "c.json", layers, nil)); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, out)
			problems, err := w.Verify(context.Background(), img, tc.full)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(problems) != 0 {
					t.Errorf("problems %q, want none", problems)
				}
				return
			}
			if len(problems) != 1 || !strings.HasPrefix(problems[0], tc.want) {
				t.Errorf("problems %q, want one starting %q", problems, tc.want)
			}
			if tc.full && !strings.Contains(problems[0], "not a valid tar") {
				t.Errorf("problem %q does not say \"not a valid tar\"", problems[0])
			}
		})
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		if err := os.Remove(filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// garble overwrites a layer with garbage of the same size.
func garble(layer string) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		p := filepath.Join(out, layer, "layer.tar")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		junk := []byte(strings.Repeat("not a tar header ", int(fi.Size())/17+1))[:fi.Size()]
		if err := os.WriteFile(p, junk, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlantedSymlinks: symlinks already in the output (as an earlier
// image's expanded tree or anyone may leave them) are never followed: a
// layer folder, a layer.tar, a config's directory or the catalog that is a
// symlink to a place outside makes the write fail, and nothing is written
// or read outside. Names that are not plain components of dir://'s scheme
// are refused before anything is touched.
func TestPlantedSymlinks(t *testing.T) {
	t.Parallel()
	config, layers := sample(t)
	l0 := stagetest.Hex(layers[0])
	tests := []struct {
		name   string
		plant  func(t *testing.T, out, outside string)
		config string
		rename func(items []stage.Item)
		opts   Options
		want   error
	}{
		{name: "layer folder", plant: symlink(l0, ""), config: "c.json", want: beneath.ErrSymlink},
		{name: "layer file", plant: func(t *testing.T, out, outside string) {
			mkdir(t, filepath.Join(out, l0))
			symlink(l0+"/layer.tar", "secret")(t, out, outside)
		}, config: "c.json", want: nil}, // replaced by the real file, not written through
		{name: "config directory", plant: symlink("sub", ""), config: "sub/c.json", want: beneath.ErrSymlink},
		{name: "catalog", plant: symlink("catalog.json", "secret"), config: "c.json", want: beneath.ErrSymlink},
		{name: "expanded tree", plant: symlink("manifest", ""), config: "c.json", opts: Options{Expand: true}, want: nil},
		{name: "layer through an expanded tree", plant: symlink("manifest-x_app-v1", ""), config: "c.json",
			rename: func(items []stage.Item) { items[1].Name = "manifest-x_app-v1/evil" }, want: ErrBadName},
		{name: "layer named like a manifest", plant: func(*testing.T, string, string) {}, config: "c.json",
			rename: func(items []stage.Item) { items[1].Name = "manifest.json" }, want: ErrBadName},
		{name: "hidden layer", plant: func(*testing.T, string, string) {}, config: "c.json",
			rename: func(items []stage.Item) { items[1].Name = ".occystrap-tmp-1-x" }, want: ErrBadName},
		{name: "config through an expanded tree", plant: symlink("manifest-x_app-v1", ""), config: "manifest-x_app-v1/evil/c.json", want: ErrBadName},
		{name: "config over a layer file", plant: func(*testing.T, string, string) {}, config: l0 + "/layer.tar", want: ErrBadName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			out, outside := filepath.Join(parent, "out"), filepath.Join(parent, "outside")
			mkdir(t, out)
			mkdir(t, outside)
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, out, outside)
			w, err := New(out, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			items := stagetest.Items(config, tc.config, layers, nil)
			if tc.rename != nil {
				tc.rename(items)
			}
			err = stagetest.WriteImage(context.Background(), w, img, items)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("run = %v, want %v", err, tc.want)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("written outside the output: %v", ents)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "{}" {
				t.Errorf("outside file changed: %q", b)
			}
			if err == nil {
				if fi, err := os.Lstat(filepath.Join(out, l0, "layer.tar")); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("layer.tar is not a regular file: %v, %v", fi, err)
				}
			}
		})
	}
}

// symlink plants out/name -> outside/target.
func symlink(name, target string) func(t *testing.T, out, outside string) {
	return func(t *testing.T, out, outside string) {
		t.Helper()
		if err := os.Symlink(filepath.Join(outside, target), filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}
