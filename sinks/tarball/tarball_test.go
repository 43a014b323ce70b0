package tarball

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

type E = fixture.Entry

func TestMain(m *testing.M) { stagetest.Main(m) }

var img = stage.Image{Name: "fixture/app", Tag: "v1"}

func sample(t testing.TB) (config []byte, layers [][]byte) {
	t.Helper()
	layers = [][]byte{
		fixture.LayerTar(fixture.Layer{E{Name: "etc/", Type: tar.TypeDir}, E{Name: "etc/app.conf", Body: "one"}}),
		fixture.LayerTar(fixture.Layer{E{Name: "usr/bin/app", Body: "#!/bin/sh\n", Mode: 0o755}}),
		fixture.LayerTar(fixture.Layer{E{Name: "etc/.wh.app.conf"}, E{Name: strings.Repeat("long/", 30) + "name", Body: "pax"}}),
	}
	return []byte(`{"architecture":"amd64","os":"linux"}`), layers
}

type member struct {
	hdr  tar.Header
	data []byte
}

func readArchive(t *testing.T, name string) []member {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []member
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, member{hdr: *h, data: b})
	}
}

func TestArchive(t *testing.T) {
	t.Parallel()
	config, layers := sample(t)
	cfgName := stagetest.Hex(config) + ".json"
	bodies := map[string]func(t *testing.T, i int, l []byte, rel *stagetest.Released) (stage.Body, int64){
		"stream with size": func(t *testing.T, i int, l []byte, rel *stagetest.Released) (stage.Body, int64) {
			return stagetest.MemBody(l, rel), int64(len(l))
		},
		"stream without size": func(t *testing.T, i int, l []byte, rel *stagetest.Released) (stage.Body, int64) {
			return stagetest.MemBody(l, rel), -1
		},
		"file without size": func(t *testing.T, i int, l []byte, rel *stagetest.Released) (stage.Body, int64) {
			p := filepath.Join(t.TempDir(), fmt.Sprint(i))
			if err := os.WriteFile(p, l, 0o600); err != nil {
				t.Fatal(err)
			}
			return &stage.FileBody{Path: p, Temp: true}, -1
		},
	}
	for bodyName, body := range bodies {
		for _, configLast := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/config last %v", bodyName, configLast), func(t *testing.T) {
				t.Parallel()
				var rel stagetest.Released
				items := []stage.Item{}
				for i, l := range layers {
					b, size := body(t, i, l, &rel)
					items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: stagetest.Hex(l), Size: size, Body: b})
				}
				cfg := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: cfgName, Data: config}
				if configLast {
					items = append(items, cfg)
				} else {
					items = append([]stage.Item{cfg}, items...)
				}
				dir, spool := t.TempDir(), t.TempDir()
				dest := filepath.Join(dir, "image.tar")
				w, err := New(dest, Options{TempDir: spool})
				if err != nil {
					t.Fatal(err)
				}
				if err := stagetest.WriteImage(context.Background(), w, img, items); err != nil {
					t.Fatalf("run: %v", err)
				}

				members := readArchive(t, dest)
				var names []string
				var listing []string
				for _, m := range members {
					names = append(names, m.hdr.Name)
					h := m.hdr
					listing = append(listing, fmt.Sprintf("%s %c %04o uid=%d gid=%d mtime=%d uname=%q gname=%q format=%v size=%d sha256=%s",
						h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.Unix(), h.Uname, h.Gname, h.Format, h.Size, stagetest.Hex(m.data)))
					if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Format != tar.FormatUSTAR {
						t.Errorf("member %s header: type %c mode %o uid %d gid %d mtime %v format %v; want regular 0644 0 0 epoch USTAR",
							h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime, h.Format)
					}
				}
				wantNames := []string{cfgName}
				for _, l := range layers {
					wantNames = append(wantNames, stagetest.Hex(l)+"/layer.tar")
				}
				wantNames = append(wantNames, "manifest.json")
				if diff := cmp.Diff(wantNames, names); diff != "" {
					t.Fatalf("member order (-want +got):\n%s", diff)
				}
				stagetest.Golden(t, "archive", listing)

				if !bytes.Equal(members[0].data, config) {
					t.Errorf("config bytes changed: %q", members[0].data)
				}
				for i, l := range layers {
					if !bytes.Equal(members[i+1].data, l) {
						t.Errorf("layer %d bytes differ", i)
					}
				}
				wantManifest := fmt.Sprintf(`[{"Layers": ["%s/layer.tar", "%s/layer.tar", "%s/layer.tar"], "RepoTags": ["app:v1"], "Config": "%s"}]`,
					stagetest.Hex(layers[0]), stagetest.Hex(layers[1]), stagetest.Hex(layers[2]), cfgName)
				if diff := cmp.Diff(wantManifest, string(members[len(members)-1].data)); diff != "" {
					t.Errorf("manifest.json (-want +got):\n%s", diff)
				}
				fi, err := os.Stat(dest)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size()%recordSize != 0 {
					t.Errorf("archive size %d is not a multiple of %d", fi.Size(), recordSize)
				}
				if rel.Count() != int64(len(layers)) && bodyName != "file without size" {
					t.Errorf("%d bodies released, want %d", rel.Count(), len(layers))
				}
				assertOnly(t, dir, "image.tar")
				assertOnly(t, spool)
				problems, err := w.Verify(context.Background(), img, true)
				if err != nil || len(problems) != 0 {
					t.Errorf("Verify = %q, %v; want no problems", problems, err)
				}
			})
		}
	}
}

// assertOnly fails unless dir holds exactly the names given.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("files in %s (-want +got):\n%s", dir, diff)
	}
}

func TestManifestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		img    stage.Image
		config string
		layers []string
		want   string
	}{
		{stage.Image{Name: "app", Tag: "latest"}, "c.json", nil, `[{"Layers": [], "RepoTags": ["app:latest"], "Config": "c.json"}]`},
		{stage.Image{Name: "quay.io/org/app", Tag: "2025.1"}, "blobs/sha256/ab", []string{"x/layer.tar"}, `[{"Layers": ["x/layer.tar"], "RepoTags": ["app:2025.1"], "Config": "blobs/sha256/ab"}]`},
		{stage.Image{Name: "org/ünï", Tag: "t"}, "c", []string{"a/layer.tar", "b/layer.tar"}, `[{"Layers": ["a/layer.tar", "b/layer.tar"], "RepoTags": ["\u00fcn\u00ef:t"], "Config": "c"}]`},
	}
	for _, tc := range tests {
		if got := string(manifestJSON(tarRepoTag(tc.img), tc.config, tc.layers)); got != tc.want {
			t.Errorf("manifestJSON(%v) = %s, want %s", tc.img, got, tc.want)
		}
	}
}

func TestArchiveErrors(t *testing.T) {
	t.Parallel()
	config, layers := sample(t)
	tests := []struct {
		name  string
		items func() []stage.Item
		want  error
	}{
		{name: "no config", items: func() []stage.Item { return stagetest.Items(config, "c.json", layers, nil)[1:] }, want: ErrNoConfig},
		{name: "skipped layer", items: func() []stage.Item {
			it := stagetest.Items(config, "c.json", layers, nil)
			it[2].Body = nil
			return it
		}, want: ErrSkippedLayer},
		{name: "body fails midway", items: func() []stage.Item {
			it := stagetest.Items(config, "c.json", layers, nil)
			l := layers[1]
			it[2].Body = &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
				return io.NopCloser(stagetest.FailingReader(l, len(l)/2, stagetest.ErrInjected)), nil
			}}
			return it
		}, want: stagetest.ErrInjected},
		{name: "body shorter than its size", items: func() []stage.Item {
			it := stagetest.Items(config, "c.json", layers, nil)
			it[1].Size += 512
			return it
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, err := New(filepath.Join(dir, "image.tar"), Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			err = stagetest.WriteImage(context.Background(), w, img, tc.items())
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("run = %v, want %v", err, tc.want)
			}
			assertOnly(t, dir)
		})
	}
}

func TestOneImagePerWriter(t *testing.T) {
	t.Parallel()
	w, err := New(filepath.Join(t.TempDir(), "x.tar"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Sink(img); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Sink(stage.Image{Name: "other", Tag: "v"}); !errors.Is(err, ErrOneImage) {
		t.Errorf("second Sink = %v, want ErrOneImage", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewRefusesMissingDirectory(t *testing.T) {
	t.Parallel()
	if _, err := New(filepath.Join(t.TempDir(), "nope", "x.tar"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New in a missing directory = %v, want ErrNotExist", err)
	}
}

// writeTar writes an archive of the given members (name, content).
func writeTar(t *testing.T, name string, members ...[2]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	good := string(fixture.LayerTar(fixture.Layer{E{Name: "f", Body: "x"}}))
	manifest := `[{"Layers": ["a/layer.tar", "b/layer.tar"], "RepoTags": ["app:v1"], "Config": "c.json"}]`
	tests := []struct {
		name    string
		members [][2]string // nil: no file at all
		full    bool
		want    []string
	}{
		{name: "missing", want: []string{"Tarball missing"}},
		{name: "intact", members: [][2]string{{"c.json", "{}"}, {"a/layer.tar", good}, {"b/layer.tar", good}, {"manifest.json", manifest}}, full: true},
		{name: "layer entry missing", members: [][2]string{{"c.json", "{}"}, {"a/layer.tar", good}, {"manifest.json", manifest}}, want: []string{"Layer entry missing: b/layer.tar"}},
		{name: "config entry missing", members: [][2]string{{"a/layer.tar", good}, {"b/layer.tar", good}, {"manifest.json", manifest}}, want: []string{"Config entry missing: c.json"}},
		{name: "layer not a tar, full", members: [][2]string{{"c.json", "{}"}, {"a/layer.tar", good}, {"b/layer.tar", strings.Repeat("junk", 200)}, {"manifest.json", manifest}}, full: true, want: []string{"Layer entry b/layer.tar is not a valid tar"}},
		{name: "layer not a tar, fast", members: [][2]string{{"c.json", "{}"}, {"a/layer.tar", good}, {"b/layer.tar", strings.Repeat("junk", 200)}, {"manifest.json", manifest}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dest := filepath.Join(t.TempDir(), "image.tar")
			if tc.members != nil {
				writeTar(t, dest, tc.members...)
			}
			w, err := New(dest, Options{})
			if err != nil {
				t.Fatal(err)
			}
			problems, err := w.Verify(context.Background(), img, tc.full)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %q", problems, tc.want)
			}
			for i := range problems {
				if !strings.HasPrefix(problems[i], tc.want[i]) {
					t.Errorf("problem %q, want one starting %q", problems[i], tc.want[i])
				}
			}
		})
	}
}

func TestInterruptedRunKeepsOldArchive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dest := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(dest, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := New(dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	config, layers := sample(t)
	ctx, cancel := context.WithCancel(context.Background())
	items := stagetest.Items(config, "c.json", layers, nil)
	items[2].Body = &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
		cancel()
		return io.NopCloser(bytes.NewReader(layers[1])), nil
	}}
	if err := stagetest.WriteImage(ctx, w, img, items); !errors.Is(err, context.Canceled) {
		t.Errorf("run = %v, want context.Canceled", err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "previous" {
		t.Errorf("destination changed by an interrupted run: %q, %v", b, err)
	}
	for _, e := range mustReadDir(t, dir) {
		if strings.HasPrefix(e, atomicfile.TempPrefix) {
			t.Errorf("temporary file left: %s", e)
		}
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
