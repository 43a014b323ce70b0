package mounts

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/sinks/oci"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// These tests need root (trusted.* attributes, mknod, mount), as the
// output does. Every overlay they mount is unmounted in t.Cleanup.

type E = fixture.Entry

func TestMain(m *testing.M) { stagetest.Main(m) }

var img = stage.Image{Name: "fixture/app", Tag: "v1"}

// layers is a three-layer image with whiteouts at the top level and deeper,
// an opaque directory next to a sibling whose name it prefixes, hard links
// and symlinks.
func layers(t testing.TB) [][]byte {
	return [][]byte{
		fixture.LayerTar(fixture.Layer{E{Name: "etc/", Type: tar.TypeDir}, E{Name: "etc/app.conf", Body: "one"}, E{Name: "top", Body: "t"},
			E{Name: "opt/app/old.conf", Body: "old"}, E{Name: "opt/app/gone/x", Body: "x"},
			E{Name: "var/cache/", Type: tar.TypeDir}, E{Name: "var/cache/a", Body: "a"}, E{Name: "var/cache/sub/s", Body: "s"},
			E{Name: "var/cachex/b", Body: "b"},
			E{Name: "usr/bin/tool", Body: "#!/bin/sh\n", Mode: 0o755},
			E{Name: "usr/bin/tool-link", Type: tar.TypeLink, Link: "usr/bin/tool"}}),
		fixture.LayerTar(fixture.Layer{E{Name: ".wh.top"}, E{Name: "opt/app/.wh.old.conf"}, E{Name: "opt/app/.wh.gone"},
			E{Name: "var/cache/", Type: tar.TypeDir}, E{Name: "var/cache/.wh..wh..opq"}, E{Name: "var/cache/c", Body: "c"},
			E{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
			E{Name: "etc/localtime", Type: tar.TypeSymlink, Link: "/usr/share/zoneinfo/UTC"}}),
		fixture.LayerTar(fixture.Layer{E{Name: "etc/app.conf", Body: "two"},
			E{Name: "opt/app/new.conf", Body: "new", Mode: 0o600},
			E{Name: "opt/app/hard.conf", Type: tar.TypeLink, Link: "opt/app/new.conf"}}),
	}
}

const config = `{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/app"],"WorkingDir":""},"rootfs":{"type":"layers","diff_ids":[]}}`

func items(t testing.TB, ls [][]byte, rel *stagetest.Released) []stage.Item {
	return stagetest.Items([]byte(config), "cfg.json", ls, rel)
}

// runMounts writes ls into a fresh mounts:// directory and unmounts its
// rootfs at cleanup.
func runMounts(t *testing.T, out string, its []stage.Item) (*Writer, error) {
	t.Helper()
	w, err := New(out, Options{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupMount(t, filepath.Join(out, "rootfs")) })
	s, err := w.Sink(img)
	if err != nil {
		t.Fatal(err)
	}
	return w, stagetest.Run(context.Background(), s, its)
}

func cleanupMount(t *testing.T, rootfs string) {
	for {
		m, err := isMountPoint(rootfs)
		if err != nil || !m {
			return
		}
		if err := unix.Unmount(rootfs, 0); err != nil {
			t.Errorf("unmount %s: %v", rootfs, err)
			return
		}
	}
}

// listing is stagetest.Listing with whiteout devices shown as "whiteout"
// (checked to be 0:0) and opaque directories marked.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	got := stagetest.Listing(t, dir)
	for i, l := range got {
		name, rest, _ := strings.Cut(l, " ")
		p := filepath.Join(dir, name)
		if strings.HasPrefix(rest, "Dc") {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Rdev != 0 {
				t.Errorf("%s: device %d:%d, want 0:0", name, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
			got[i] = name + " whiteout"
		}
		if strings.HasPrefix(rest, "dir ") {
			buf := make([]byte, 4)
			if n, err := unix.Lgetxattr(p, extract.OpaqueXattr, buf); err == nil {
				got[i] += " opaque=" + string(buf[:n])
			}
		}
	}
	return got
}

func TestLayoutAndOverlay(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	ls := layers(t)
	out := t.TempDir()
	var rel stagetest.Released
	w, err := runMounts(t, out, items(t, ls, &rel))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rel.Count() != int64(len(ls)) {
		t.Errorf("%d bodies released, want %d", rel.Count(), len(ls))
	}

	// Each layer's own tree, with the overlay markers.
	for i, l := range ls {
		name := stagetest.Hex(l)
		stagetest.Golden(t, "layer"+string(rune('0'+i)), listing(t, filepath.Join(out, name, "layer")))
		b, err := os.ReadFile(filepath.Join(out, name, "layer.tar"))
		if err != nil || string(b) != string(l) {
			t.Errorf("layer %d: layer.tar is not the layer (%v)", i, err)
		}
	}

	// Manifest and catalog as dir://; the config moved to container-config.json.
	var manifest []map[string]any
	stagetest.ReadJSON(t, filepath.Join(out, "manifest.json"), &manifest)
	var lp []any
	for _, l := range ls {
		lp = append(lp, stagetest.Hex(l)+"/layer.tar")
	}
	if d := cmp.Diff([]map[string]any{{"Config": "cfg.json", "Layers": lp, "RepoTags": []any{"app:v1"}}}, manifest); d != "" {
		t.Errorf("manifest.json (-want +got):\n%s", d)
	}
	var catalog map[string]map[string]string
	stagetest.ReadJSON(t, filepath.Join(out, "catalog.json"), &catalog)
	if d := cmp.Diff(map[string]map[string]string{"fixture/app": {"v1": "manifest.json"}}, catalog); d != "" {
		t.Errorf("catalog.json (-want +got):\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(out, "cfg.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("config still under its own name (%v)", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "container-config.json")); err != nil || string(b) != config {
		t.Errorf("container-config.json = %q (%v)", b, err)
	}
	var spec struct {
		Process struct {
			Args []string `json:"args"`
			Cwd  string   `json:"cwd"`
		} `json:"process"`
		Root struct {
			Path string `json:"path"`
		} `json:"root"`
	}
	stagetest.ReadJSON(t, filepath.Join(out, "config.json"), &spec)
	if spec.Process.Cwd != "/" || !cmp.Equal(spec.Process.Args, []string{"/bin/app"}) || spec.Root.Path != "rootfs" {
		t.Errorf("config.json: %+v", spec)
	}
	for _, d := range []string{"working", "delta"} {
		if fi, err := os.Stat(filepath.Join(out, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s missing (%v)", d, err)
		}
	}

	// The overlay shows what the oci:// output extracts.
	bundle := filepath.Join(t.TempDir(), "bundle")
	ow, _ := oci.New(bundle, oci.Options{})
	osink, _ := ow.Sink(img)
	if err := stagetest.Run(context.Background(), osink, items(t, ls, nil)); err != nil {
		t.Fatal(err)
	}
	want := stagetest.Listing(t, filepath.Join(bundle, "rootfs"))
	if d := cmp.Diff(want, stagetest.Listing(t, filepath.Join(out, "rootfs"))); d != "" {
		t.Errorf("overlay view differs from the oci:// rootfs (-oci +overlay):\n%s", d)
	}

	problems, err := w.Verify(context.Background(), img, true)
	if err != nil || len(problems) != 0 {
		t.Errorf("Verify = %q, %v; want no problems", problems, err)
	}
}

func TestOverlayOptions(t *testing.T) {
	t.Parallel()
	lower := []string{"/i/c/layer", "/i/b/layer", "/i/a/layer"}
	plus, single := overlayOptions(lower, "/i/delta", "/i/working")
	if want := "lowerdir+=/i/c/layer,lowerdir+=/i/b/layer,lowerdir+=/i/a/layer,upperdir=/i/delta,workdir=/i/working"; plus != want {
		t.Errorf("lowerdir+= form = %q, want %q", plus, want)
	}
	if want := "lowerdir=/i/c/layer:/i/b/layer:/i/a/layer,upperdir=/i/delta,workdir=/i/working"; single != want {
		t.Errorf("lowerdir= form = %q, want %q", single, want)
	}
}

func TestMountFallsBackToSingleLowerdir(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	lower := []string{"/i/b/layer", "/i/a/layer"}
	long := []string{"/" + strings.Repeat("x", maxOptions/2), "/" + strings.Repeat("y", maxOptions/2)}
	tests := []struct {
		name    string
		lower   []string
		results []error // what each mount call returns, in turn
		want    []string
		wantErr bool
	}{
		{"lowerdir+= taken", lower, []error{nil}, []string{"lowerdir+=/i/b/layer,lowerdir+=/i/a/layer,upperdir=/u,workdir=/w"}, false},
		{"fallback", lower, []error{unix.EINVAL, nil}, []string{
			"lowerdir+=/i/b/layer,lowerdir+=/i/a/layer,upperdir=/u,workdir=/w",
			"lowerdir=/i/b/layer:/i/a/layer,upperdir=/u,workdir=/w",
		}, false},
		{"both fail", lower, []error{unix.EINVAL, unix.EPERM}, []string{
			"lowerdir+=/i/b/layer,lowerdir+=/i/a/layer,upperdir=/u,workdir=/w",
			"lowerdir=/i/b/layer:/i/a/layer,upperdir=/u,workdir=/w",
		}, true},
		{"options too long for a page", long, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls []string
			got, err := mountOverlayWith(func(opts string) error {
				calls = append(calls, opts)
				return tc.results[len(calls)-1]
			}, tc.lower, "/u", "/w", "/target")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.want, calls); d != "" {
				t.Errorf("mount calls (-want +got):\n%s", d)
			}
			if err == nil && got != calls[len(calls)-1] {
				t.Errorf("returned options %q, want the ones that worked", got)
			}
		})
	}
}

func TestMountRefusesPathsOptionsCannotCarry(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	for _, p := range []string{"/a,b", "/a:b", `/a\b`} {
		if _, err := mountOverlay([]string{p}, "/u", "/w", t.TempDir()); !errors.Is(err, ErrBadPath) {
			t.Errorf("mountOverlay(%q) = %v, want ErrBadPath", p, err)
		}
	}
	if _, err := mountOverlay(nil, "/u", "/w", t.TempDir()); err == nil {
		t.Error("mountOverlay of no layers succeeded")
	}
}

func TestDuplicateLayerMountedOnce(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	ls := layers(t)
	ls = append(ls, ls[2])
	out := t.TempDir()
	if _, err := runMounts(t, out, items(t, ls, nil)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := stagetest.Listing(t, filepath.Join(out, "rootfs")); !contains(got, "etc/app.conf file 0644 3 3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3") {
		t.Errorf("merged view lacks the newest etc/app.conf: %q", got)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestRerunWhileMountedFails(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	out := t.TempDir()
	if _, err := runMounts(t, out, items(t, layers(t), nil)); err != nil {
		t.Fatal(err)
	}
	before := stagetest.Listing(t, out)
	_, err := runMounts(t, out, items(t, layers(t), nil))
	if !errors.Is(err, ErrMounted) {
		t.Fatalf("second run = %v, want ErrMounted", err)
	}
	if d := cmp.Diff(before, stagetest.Listing(t, out)); d != "" {
		t.Errorf("second run changed the output (-before +after):\n%s", d)
	}

	// Once unmounted, a rerun reuses every layer and mounts again.
	cleanupMount(t, filepath.Join(out, "rootfs"))
	w, err := runMounts(t, out, items(t, layers(t), nil))
	if err != nil {
		t.Fatalf("run after unmount: %v", err)
	}
	if problems, err := w.Verify(context.Background(), img, false); err != nil || len(problems) != 0 {
		t.Errorf("Verify = %q, %v", problems, err)
	}
}

func TestVerifyFindsProblems(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	ls := layers(t)
	out := t.TempDir()
	w, err := runMounts(t, out, items(t, ls, nil))
	if err != nil {
		t.Fatal(err)
	}
	cleanupMount(t, filepath.Join(out, "rootfs"))
	tree := filepath.Join(out, stagetest.Hex(ls[1]), "layer")
	if err := os.RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	problems, err := w.Verify(context.Background(), img, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Layer directory missing: " + tree, "Root filesystem not mounted: " + filepath.Join(out, "rootfs")}
	if d := cmp.Diff(want, problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}

func TestInterruptedRunLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	tests := []struct {
		name   string
		broken func(t *testing.T, its []stage.Item) []stage.Item
		want   error
	}{
		{"layer read fails", func(t *testing.T, its []stage.Item) []stage.Item {
			data := layers(t)[1]
			its[2].Body = &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
				return io.NopCloser(stagetest.FailingReader(data, len(data)/2, stagetest.ErrInjected)), nil
			}}
			return its
		}, stagetest.ErrInjected},
		{"unsafe entry", func(t *testing.T, its []stage.Item) []stage.Item {
			l := fixture.LayerTar(fixture.Layer{E{Name: "l", Type: tar.TypeSymlink, Link: "/"}, E{Name: "l/tmp/.wh.x"}})
			its[2] = stage.Item{Seq: 1, Kind: stage.KindLayer, Name: stagetest.Hex(l), Size: int64(len(l)), Body: stagetest.MemBody(l, nil)}
			return its
		}, extract.ErrUnsafeEntry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			_, err := runMounts(t, out, tc.broken(t, items(t, layers(t), nil)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("run = %v, want %v", err, tc.want)
			}
			if m, _ := isMountPoint(filepath.Join(out, "rootfs")); m {
				t.Error("rootfs mounted after a failure")
			}
			for _, l := range stagetest.Listing(t, out) {
				name, _, _ := strings.Cut(l, " ")
				base := filepath.Base(name)
				if strings.Contains(name, atomicfile.TempPrefix) || base == "rootfs" || base == "working" || base == "delta" ||
					base == "config.json" || base == "container-config.json" {
					t.Errorf("left behind after a failure: %s", l)
				}
			}
		})
	}
}
