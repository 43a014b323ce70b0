package main

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// Every file and directory the outputs and the layer cache create gets the
// mode a plain create gives under the caller's umask (0666 and 0777 less
// it), as the original's files do: the CLI runs in a child process with
// umask 022 and then 077, and each output is read back.
func TestOutputsHonourUmask(t *testing.T) {
	src, a := writeArchive(t, false)
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	for _, tc := range []struct {
		umask     string
		file, dir os.FileMode
	}{{"022", 0o644, 0o755}, {"077", 0o600, 0o700}} {
		t.Run(tc.umask, func(t *testing.T) {
			base := t.TempDir()
			c := child{umask: tc.umask}
			g := []string{"--log-format", "json"}
			mustChild(t, c, append(g, "process", "tar://"+src, "tar://"+filepath.Join(base, "out.tar"))...)
			mustChild(t, c, append(g, "process", "tar://"+src, "dir://"+filepath.Join(base, "d")+"?expand=true",
				"-f", "inspect:file="+filepath.Join(base, "inspect.jsonl"))...)
			mustChild(t, c, append(g, "process", "tar://"+src, "oci://"+filepath.Join(base, "o"))...)
			mustChild(t, c, append(g, "--insecure", "--layer-cache", filepath.Join(base, "cache", "layers.json"),
				"process", "tar://"+src, "registry://"+reg.Host+"/umask/u"+tc.umask+":v1")...)

			files := []string{"out.tar", "inspect.jsonl", "d/catalog.json", "d/manifest.json", "d/" + a.ConfigPath,
				"o/config.json", "o/container-config.json", "cache/layers.json"}
			dirs := []string{"d", "d/manifest", "o", "o/rootfs", "cache"}
			for _, n := range a.LayerNames {
				files = append(files, "d/"+n+"/layer.tar")
				dirs = append(dirs, "d/"+n)
			}
			if os.Geteuid() == 0 {
				// mounts:// needs root (overlay, trusted.* attributes).
				rootfs := filepath.Join(base, "m", "rootfs")
				t.Cleanup(func() {
					for unix.Unmount(rootfs, 0) == nil {
					}
				})
				mustChild(t, c, append(g, "process", "tar://"+src, "mounts://"+filepath.Join(base, "m"))...)
				files = append(files, "m/catalog.json", "m/manifest.json", "m/config.json", "m/container-config.json")
				dirs = append(dirs, "m", "m/delta", "m/working")
				for _, n := range a.LayerNames {
					files = append(files, "m/"+n+"/layer.tar")
					dirs = append(dirs, "m/"+n, "m/"+n+"/layer")
				}
			}
			check := func(names []string, want os.FileMode, isDir bool) {
				for _, n := range names {
					fi, err := os.Lstat(filepath.Join(base, n))
					if err != nil {
						t.Errorf("%s: %v", n, err)
						continue
					}
					if fi.IsDir() != isDir || fi.Mode().Perm() != want {
						t.Errorf("%s: %s, want %s under umask %s", n, fi.Mode(), want, tc.umask)
					}
				}
			}
			check(files, tc.file, false)
			check(dirs, tc.dir, true)
		})
	}
	if os.Geteuid() != 0 {
		testenv.RequireRoot(t) // mounts:// was left out above
	}
}

// deviceImage has a character device, a block device and a fifo.
func deviceImage() fixture.Image {
	return fixture.Image{
		Name: "fixture/dev",
		Tag:  "v1",
		Layers: []fixture.Layer{{
			fixture.Dir("dev", 0o755),
			fixture.Device("dev/null", tar.TypeChar, 1, 3, 0o666),
			fixture.Device("dev/loop7", tar.TypeBlock, 7, 7, 0o660),
			fixture.Dir("run", 0o755),
			fixture.Fifo("run/initctl", 0o600),
			fixture.File("etc/hostname", "box\n", 0o644),
		}},
	}
}

func writeImageArchive(t *testing.T, dir string, img fixture.Image) (string, *fixture.Archive) {
	t.Helper()
	path := filepath.Join(dir, "image.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := fixture.WriteLegacyArchive(f, img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, a
}

// As root, dir://?expand and oci:// create device nodes with their numbers
// and fifos; as an unprivileged user (nobody, when the test runs as root)
// the devices are skipped with a warning that names the count, and the fifo
// is still made.
func TestDevicesAsRootAndAsNobody(t *testing.T) {
	shared := sharedTempDir(t)
	src, _ := writeImageArchive(t, shared, deviceImage())
	type node struct {
		kind         uint32
		major, minor uint32
	}
	want := map[string]node{"dev/null": {unix.S_IFCHR, 1, 3}, "dev/loop7": {unix.S_IFBLK, 7, 7}, "run/initctl": {unix.S_IFIFO, 0, 0}}

	t.Run("root", func(t *testing.T) {
		testenv.RequireRoot(t)
		out := t.TempDir()
		mustRun(t, "--log-format", "json", "process", "tar://"+src, "dir://"+filepath.Join(out, "d")+"?expand=true")
		mustRun(t, "--log-format", "json", "process", "tar://"+src, "oci://"+filepath.Join(out, "o"))
		for _, root := range []string{"d/manifest", "o/rootfs"} {
			for name, n := range want {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(out, root, name), &st); err != nil {
					t.Errorf("%s/%s: %v", root, name, err)
					continue
				}
				if st.Mode&unix.S_IFMT != n.kind || (n.kind != unix.S_IFIFO && (unix.Major(st.Rdev) != n.major || unix.Minor(st.Rdev) != n.minor)) {
					t.Errorf("%s/%s: mode %o device %d:%d, want type %o device %d:%d", root, name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), n.kind, n.major, n.minor)
				}
			}
		}
	})

	t.Run("unprivileged", func(t *testing.T) {
		c := child{}
		if os.Geteuid() == 0 {
			c.cred = nobody
		}
		out := filepath.Join(shared, "out-nobody")
		_, stderr := mustChild(t, c, "--log-format", "json", "process", "tar://"+src, "dir://"+out+"?expand=true")
		var warned bool
		for _, line := range strings.Split(stderr, "\n") {
			var ev struct {
				Level   string `json:"level"`
				Skipped int    `json:"skipped"`
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Level == "warn" && ev.Skipped == 2 && ev.Message == "Skipped device nodes" {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no warning naming 2 skipped devices in stderr:\n%s", stderr)
		}
		for _, name := range []string{"dev/null", "dev/loop7"} {
			if _, err := os.Lstat(filepath.Join(out, "manifest", name)); !os.IsNotExist(err) {
				t.Errorf("%s: %v, want it skipped", name, err)
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(out, "manifest", "run/initctl"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			t.Errorf("run/initctl: %v, mode %o; want a fifo", err, st.Mode)
		}
		if b, err := os.ReadFile(filepath.Join(out, "manifest", "etc/hostname")); err != nil || string(b) != "box\n" {
			t.Errorf("etc/hostname: %q, %v", b, err)
		}
	})
}

// A layer the output already has is skipped by the source (the original's
// fetch_callback), and inspect then gives it size 0, as the original does:
// a second run of the same image into the same dir:// lists every layer
// with size 0; the first run gave their sizes.
func TestInspectGivesSkippedLayersSizeZero(t *testing.T) {
	src, a := writeArchive(t, false)
	base := t.TempDir()
	jsonl := filepath.Join(base, "inspect.jsonl")
	for range 2 {
		mustRun(t, "--log-format", "json", "process", "tar://"+src, "dir://"+filepath.Join(base, "d"), "-f", "inspect:file="+jsonl)
	}
	b, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines in %s, want 2:\n%s", len(lines), jsonl, b)
	}
	for run, line := range lines {
		var doc struct {
			Layers []struct {
				ID   string `json:"Id"`
				Size int64
			} `json:"layers"`
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Layers) != len(a.LayerNames) {
			t.Fatalf("run %d: %d layers, want %d", run+1, len(doc.Layers), len(a.LayerNames))
		}
		for i, l := range doc.Layers {
			want := int64(len(a.Layers[len(a.Layers)-1-i])) // newest first
			if run == 1 {
				want = 0
			}
			if l.Size != want {
				t.Errorf("run %d: layer %s: Size %d, want %d", run+1, l.ID, l.Size, want)
			}
		}
	}
}
