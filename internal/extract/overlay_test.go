package extract

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
	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// These tests need root (trusted.* attributes, mknod), as the mounts://
// output does.

func applyOverlay(t *testing.T, dir string, entries ...E) error {
	t.Helper()
	tree, err := New(dir, Options{Overlay: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Apply(context.Background(), bytes.NewReader(fixture.LayerTar(entries))); err != nil {
		_ = tree.Close()
		return err
	}
	return tree.Close()
}

func opaqueDirs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(p, OpaqueXattr, buf)
		if errors.Is(err, unix.ENODATA) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+"="+string(buf[:n]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestApplyOverlay(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	tests := []struct {
		name    string
		entries []E
		want    []string
		opaque  []string
	}{
		{
			name:    "whiteouts at any depth become character devices",
			entries: []E{{Name: ".wh.top"}, {Name: "a/b/c/.wh.deep"}, {Name: "a/keep", Body: "k"}},
			want: []string{
				"a dir 0755",
				"a/b dir 0755",
				"a/b/c dir 0755",
				"a/b/c/deep Dc---------",
				"a/keep file 0644 1 8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a",
				"top Dc---------",
			},
		},
		{
			name:    "opaque markers become the xattr, at any depth and at the root",
			entries: []E{{Name: "d/", Type: tar.TypeDir}, {Name: "d/.wh..wh..opq"}, {Name: "d/new", Body: "n"}, {Name: "x/y/.wh..wh..opq"}, {Name: ".wh..wh..opq"}},
			want: []string{
				"d dir 0755",
				"d/new file 0644 1 1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9",
				"x dir 0755",
				"x/y dir 0755",
			},
			opaque: []string{".=y", "d=y", "x/y=y"},
		},
		{
			name:    "the layer's own entry wins over its whiteout",
			entries: []E{{Name: "f", Body: "f"}, {Name: ".wh.f"}},
			want:    []string{"f file 0644 1 252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "layer")
			if err := applyOverlay(t, dir, tc.entries...); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if diff := cmp.Diff(tc.want, listingWithDevices(t, dir)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.opaque, opaqueDirs(t, dir)); diff != "" {
				t.Errorf("opaque directories (-want +got):\n%s", diff)
			}
		})
	}
}

// listingWithDevices is stagetest.Listing, with a character device shown with
// its mode and checked to be 0:0.
func listingWithDevices(t *testing.T, dir string) []string {
	t.Helper()
	got := stagetest.Listing(t, dir)
	for i, l := range got {
		name, typ, ok := strings.Cut(l, " ")
		if ok && typ == "Dc---------" {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
				t.Fatal(err)
			}
			if st.Rdev != 0 {
				t.Errorf("%s: device %d:%d, want 0:0", name, unix.Major(st.Rdev), unix.Minor(st.Rdev))
			}
			got[i] = name + " " + typ
		}
	}
	return got
}

func TestApplyOverlayRefusesUnsafeEntries(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	tests := []struct {
		name    string
		entries []E
		entry   string
	}{
		{name: "whiteout through a symlink", entries: []E{{Name: "l", Type: tar.TypeSymlink, Link: "/"}, {Name: "l/tmp/.wh.x"}}, entry: "l/tmp/.wh.x"},
		{name: "opaque marker through a symlink", entries: []E{{Name: "l", Type: tar.TypeSymlink, Link: "../.."}}, entry: "l"},
		{name: "opaque marker through an absolute symlink", entries: []E{{Name: "l", Type: tar.TypeSymlink, Link: "/tmp"}, {Name: "l/.wh..wh..opq"}}, entry: "l/.wh..wh..opq"},
		{name: "whiteout climbing out", entries: []E{{Name: "../.wh.x"}}, entry: "../.wh.x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			err := applyOverlay(t, filepath.Join(parent, "layer"), tc.entries...)
			if err == nil {
				t.Fatalf("apply succeeded, want an error naming %q", tc.entry)
			}
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("error %q is not ErrUnsafeEntry", err)
			}
			for _, l := range stagetest.Listing(t, parent) {
				if l != "layer dir 0755" && !strings.HasPrefix(l, "layer/") {
					t.Errorf("written outside the target: %s", l)
				}
			}
		})
	}
}
