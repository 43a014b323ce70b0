package oci

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

type E = fixture.Entry

func TestMain(m *testing.M) { stagetest.Main(m) }

var img = stage.Image{Name: "fixture/app", Tag: "v1"}

// Layers is a three-layer image with whiteouts, an opaque directory next to
// a sibling whose name it prefixes, hard links and symlinks.
func Layers(t testing.TB) [][]byte {
	return [][]byte{
		fixture.LayerTar(fixture.Layer{E{Name: "etc/", Type: tar.TypeDir}, E{Name: "etc/app.conf", Body: "one"},
			E{Name: "opt/app/old.conf", Body: "old"}, E{Name: "opt/app/gone/x", Body: "x"},
			E{Name: "var/cache/", Type: tar.TypeDir}, E{Name: "var/cache/a", Body: "a"},
			E{Name: "var/cachex/b", Body: "b"},
			E{Name: "usr/bin/tool", Body: "#!/bin/sh\n", Mode: 0o755},
			E{Name: "usr/bin/tool-link", Type: tar.TypeLink, Link: "usr/bin/tool"}}),
		fixture.LayerTar(fixture.Layer{E{Name: "opt/app/.wh.old.conf"}, E{Name: "opt/app/.wh.gone"},
			E{Name: "var/cache/", Type: tar.TypeDir}, E{Name: "var/cache/.wh..wh..opq"}, E{Name: "var/cache/c", Body: "c"},
			E{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
			E{Name: "etc/localtime", Type: tar.TypeSymlink, Link: "/usr/share/zoneinfo/UTC"}}),
		fixture.LayerTar(fixture.Layer{E{Name: "etc/app.conf", Body: "two"},
			E{Name: "opt/app/new.conf", Body: "new", Mode: 0o600},
			E{Name: "opt/app/hard.conf", Type: tar.TypeLink, Link: "opt/app/new.conf"}}),
	}
}

const config = `{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/tini","--"],"Cmd":["/bin/app","-v"],"WorkingDir":"/srv","Env":["A=b"]},"rootfs":{"type":"layers","diff_ids":[]}}`

func items(t testing.TB, cfg string, rel *stagetest.Released) []stage.Item {
	return stagetest.Items([]byte(cfg), "blobs/sha256/cfg", Layers(t), rel)
}

func TestBundle(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bundle")
	w, err := New(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var rel stagetest.Released
	if err := stagetest.WriteImage(context.Background(), w, img, items(t, config, &rel)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if rel.Count() != 3 {
		t.Errorf("%d bodies released, want 3", rel.Count())
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, e := range entries {
		top = append(top, e.Name())
	}
	if d := cmp.Diff([]string{"config.json", "container-config.json", "rootfs"}, top); d != "" {
		t.Errorf("bundle directory (-want +got):\n%s", d)
	}
	stagetest.Golden(t, "rootfs", stagetest.Listing(t, filepath.Join(out, "rootfs")))
	cc, err := os.ReadFile(filepath.Join(out, "container-config.json"))
	if err != nil || string(cc) != config {
		t.Errorf("container-config.json = %q (%v), want the config as fetched", cc, err)
	}
	spec, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	stagetest.Golden(t, "config.json", strings.Split(string(spec), "\n"))
	a, err1 := os.Stat(filepath.Join(out, "rootfs/opt/app/new.conf"))
	b, err2 := os.Stat(filepath.Join(out, "rootfs/opt/app/hard.conf"))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("hard.conf is not a hard link of new.conf (%v, %v)", err1, err2)
	}
	problems, err := w.Verify(context.Background(), img, true)
	if err != nil || len(problems) != 0 {
		t.Errorf("Verify = %q, %v; want no problems", problems, err)
	}
}

func TestNeedsOrder(t *testing.T) {
	t.Parallel()
	w, _ := New(t.TempDir(), Options{})
	s, _ := w.Sink(img)
	if !s.Properties().Ordered {
		t.Error("the oci sink does not ask for layers in order")
	}
}

// TestOutOfOrderItems feeds layers in reverse (as the engine never does for
// this sink, but a caller without it might): they are applied in Seq order.
func TestOutOfOrderItems(t *testing.T) {
	t.Parallel()
	in := items(t, config, nil)
	rev := []stage.Item{in[3], in[2], in[0], in[1]}
	out := filepath.Join(t.TempDir(), "b")
	w, _ := New(out, Options{})
	s, _ := w.Sink(img)
	ch := make(chan stage.Item, len(rev))
	for _, it := range rev {
		ch <- it
	}
	close(ch)
	if err := s.Consume(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	stagetest.Golden(t, "rootfs", stagetest.Listing(t, filepath.Join(out, "rootfs")))
}

func TestRefusesUnsafeEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		layer []E
	}{
		{"dot dot", []E{{Name: "../evil", Body: "x"}}},
		{"absolute", []E{{Name: "/evil", Body: "x"}}},
		{"through a symlink", []E{{Name: "l", Type: tar.TypeSymlink, Link: "/"}, {Name: "l/evil", Body: "x"}}},
		{"hard link out", []E{{Name: "h", Type: tar.TypeLink, Link: "../outside"}}},
		{"symlink climbing out", []E{{Name: "a/l", Type: tar.TypeSymlink, Link: "../../outside"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			out := filepath.Join(parent, "bundle")
			w, _ := New(out, Options{})
			its := items(t, config, nil)
			its[2].Body = stagetest.MemBody(fixture.LayerTar(tc.layer), nil)
			err := stagetest.WriteImage(context.Background(), w, img, its)
			if !errors.Is(err, extract.ErrUnsafeEntry) {
				t.Fatalf("run = %v, want ErrUnsafeEntry", err)
			}
			if got := stagetest.Listing(t, parent); len(got) != 0 {
				t.Errorf("left behind after a refused entry: %q", got)
			}
		})
	}
}

func TestRuntimeSpecArgsAndCwd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cfg string
		args      []string
		cwd       string
	}{
		{"entrypoint and cmd", `{"config":{"Entrypoint":["/e"],"Cmd":["c1","c2"],"WorkingDir":"/w"}}`, []string{"/e", "c1", "c2"}, "/w"},
		{"cmd only, no working dir", `{"config":{"Cmd":["/bin/sh"]}}`, []string{"/bin/sh"}, "/"},
		{"empty working dir", `{"config":{"Entrypoint":["/e"],"WorkingDir":""}}`, []string{"/e"}, "/"},
		{"nulls", `{"config":{"Entrypoint":null,"Cmd":null}}`, []string{}, "/"},
		{"no config section", `{}`, []string{}, "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "b")
			w, _ := New(out, Options{})
			if err := stagetest.WriteImage(context.Background(), w, img, items(t, tc.cfg, nil)); err != nil {
				t.Fatal(err)
			}
			var spec struct {
				Process struct {
					Args     []string `json:"args"`
					Cwd      string   `json:"cwd"`
					Terminal bool     `json:"terminal"`
				} `json:"process"`
				Hostname string `json:"hostname"`
			}
			b, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &spec); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.args, spec.Process.Args); d != "" {
				t.Errorf("args (-want +got):\n%s", d)
			}
			if spec.Process.Cwd != tc.cwd || spec.Process.Terminal || spec.Hostname != "occystrap" {
				t.Errorf("cwd %q terminal %v hostname %q; want %q false occystrap", spec.Process.Cwd, spec.Process.Terminal, spec.Hostname, tc.cwd)
			}
		})
	}
}

func TestInterruptedRunLeavesNothing(t *testing.T) {
	t.Parallel()
	broken := func(t *testing.T, its []stage.Item, rel *stagetest.Released) []stage.Item {
		data := Layers(t)[1]
		its[2].Body = &stage.OpenerBody{
			OpenFunc: func() (io.ReadCloser, error) {
				return io.NopCloser(stagetest.FailingReader(data, len(data)/2, stagetest.ErrInjected)), nil
			},
			ReleaseFunc: stagetest.MemBody(nil, rel).Release,
		}
		return its
	}
	t.Run("new directory", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		w, _ := New(filepath.Join(parent, "a", "bundle"), Options{})
		var rel stagetest.Released
		err := stagetest.WriteImage(context.Background(), w, img, broken(t, items(t, config, &rel), &rel))
		if !errors.Is(err, stagetest.ErrInjected) {
			t.Fatalf("run = %v, want the injected failure", err)
		}
		if rel.Count() != 3 {
			t.Errorf("%d bodies released, want 3", rel.Count())
		}
		if got := stagetest.Listing(t, parent); !cmp.Equal(got, []string{"a dir 0755"}) {
			t.Errorf("left behind: %q", got)
		}
	})
	t.Run("existing bundle kept", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "bundle")
		w, _ := New(out, Options{})
		if err := stagetest.WriteImage(context.Background(), w, img, items(t, config, nil)); err != nil {
			t.Fatal(err)
		}
		before := stagetest.Listing(t, out)
		err := stagetest.WriteImage(context.Background(), w, img, broken(t, items(t, `{"config":{"Cmd":["other"]}}`, nil), nil))
		if !errors.Is(err, stagetest.ErrInjected) {
			t.Fatalf("run = %v, want the injected failure", err)
		}
		if d := cmp.Diff(before, stagetest.Listing(t, out)); d != "" {
			t.Errorf("failed run changed the bundle (-before +after):\n%s", d)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		w, _ := New(filepath.Join(parent, "bundle"), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		its := items(t, config, nil)
		data := Layers(t)[2]
		its[3].Body = &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
			cancel()
			return io.NopCloser(strings.NewReader(string(data))), nil
		}}
		if err := stagetest.WriteImage(ctx, w, img, its); !errors.Is(err, context.Canceled) {
			t.Fatalf("run = %v, want context.Canceled", err)
		}
		if got := stagetest.Listing(t, parent); len(got) != 0 {
			t.Errorf("left behind: %q", got)
		}
	})
}

func TestRerunReplacesBundle(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bundle")
	w, _ := New(out, Options{})
	if err := os.MkdirAll(filepath.Join(out, "rootfs", "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := stagetest.WriteImage(context.Background(), w, img, items(t, config, nil)); err != nil {
		t.Fatal(err)
	}
	if err := stagetest.WriteImage(context.Background(), w, img, items(t, config, nil)); err != nil {
		t.Fatal(err)
	}
	stagetest.Golden(t, "rootfs", stagetest.Listing(t, filepath.Join(out, "rootfs")))
	for _, l := range stagetest.Listing(t, out) {
		if strings.Contains(l, atomicfile.TempPrefix) {
			t.Errorf("temporary file left: %s", l)
		}
	}
}

func TestConsumeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		items func(t *testing.T) []stage.Item
		want  error
	}{
		{"no config", func(t *testing.T) []stage.Item { return items(t, config, nil)[1:] }, ErrNoConfig},
		{"skipped layer", func(t *testing.T) []stage.Item {
			its := items(t, config, nil)
			its[1].Body = nil
			return its
		}, ErrMissingLayer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			w, _ := New(filepath.Join(parent, "bundle"), Options{})
			if err := stagetest.WriteImage(context.Background(), w, img, tc.items(t)); !errors.Is(err, tc.want) {
				t.Fatalf("run = %v, want %v", err, tc.want)
			}
			if got := stagetest.Listing(t, parent); len(got) != 0 {
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

func TestVerifyFindsProblems(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bundle")
	w, _ := New(out, Options{})
	if err := stagetest.WriteImage(context.Background(), w, img, items(t, config, nil)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(out, "container-config.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "config.json"), []byte(`{"root":{"path":"elsewhere"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(out, "rootfs")); err != nil {
		t.Fatal(err)
	}
	problems, err := w.Verify(context.Background(), img, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Root filesystem missing: " + filepath.Join(out, "rootfs"),
		"Config file missing: " + filepath.Join(out, "container-config.json"),
		"Runtime config invalid: " + filepath.Join(out, "config.json"),
	}
	if d := cmp.Diff(want, problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(out, "config.json")); errors.Is(err, fs.ErrNotExist) {
		t.Fatal("config.json gone")
	}
}

func TestSinkAfterClose(t *testing.T) {
	t.Parallel()
	w, _ := New(t.TempDir(), Options{})
	_ = w.Close()
	if _, err := w.Sink(img); !errors.Is(err, ErrClosed) {
		t.Errorf("Sink after Close = %v, want ErrClosed", err)
	}
}
