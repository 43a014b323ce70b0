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

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage/stagetest"
)

type E = fixture.Entry

func TestMain(m *testing.M) { stagetest.Main(m) }

func apply(t *testing.T, dir string, layers ...[]E) error {
	t.Helper()
	tree, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if err := tree.Apply(context.Background(), bytes.NewReader(fixture.LayerTar(l))); err != nil {
			_ = tree.Close()
			return err
		}
	}
	return tree.Close()
}

func TestApply(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("long-directory-name/", 8) + "file-with-a-long-name.txt"
	tests := []struct {
		name   string
		layers [][]E
		want   []string
	}{
		{
			name: "whiteout file",
			layers: [][]E{
				{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/a", Body: "a"}, {Name: "etc/b", Body: "b"}},
				{{Name: "etc/.wh.a"}},
			},
			want: []string{
				"etc dir 0755",
				"etc/b file 0644 1 3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
			},
		},
		{
			name: "whiteout directory removes its subtree",
			layers: [][]E{
				{{Name: "opt/d/sub/y", Body: "y"}, {Name: "opt/d/x", Body: "x"}, {Name: "opt/keep", Body: "k"}},
				{{Name: "opt/.wh.d"}},
			},
			want: []string{
				"opt dir 0755",
				"opt/keep file 0644 1 8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a",
			},
		},
		{
			name: "opaque directory respects the path boundary",
			layers: [][]E{
				{{Name: "a/", Type: tar.TypeDir}, {Name: "a/x", Body: "x"}, {Name: "a/sub/y", Body: "y"}, {Name: "ab/z", Body: "z"}},
				{{Name: "a/", Type: tar.TypeDir}, {Name: "a/.wh..wh..opq"}, {Name: "a/new", Body: "n"}},
			},
			want: []string{
				"a dir 0755",
				"a/new file 0644 1 1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9",
				"ab dir 0755",
				"ab/z file 0644 1 594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06",
			},
		},
		{
			name: "opaque marker after the layer's own entries keeps them",
			layers: [][]E{
				{{Name: "a/old", Body: "o"}},
				{{Name: "a/new", Body: "n"}, {Name: "a/sub/deep", Body: "d"}, {Name: "a/.wh..wh..opq"}},
			},
			want: []string{
				"a dir 0755",
				"a/new file 0644 1 1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9",
				"a/sub dir 0755",
				"a/sub/deep file 0644 1 18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4",
			},
		},
		{
			name: "opaque marker prunes earlier entries under the layer's own subdirectories",
			layers: [][]E{
				{{Name: "a/sub/old", Body: "o"}},
				{{Name: "a/sub/new", Body: "n"}, {Name: "a/.wh..wh..opq"}},
			},
			want: []string{
				"a dir 0755",
				"a/sub dir 0755",
				"a/sub/new file 0644 1 1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9",
			},
		},
		{
			name: "hard link keeps content after its target is whited out",
			layers: [][]E{
				{{Name: "f", Body: "data"}, {Name: "h", Type: tar.TypeLink, Link: "f"}},
				{{Name: ".wh.f"}},
			},
			want: []string{
				"h file 0644 4 3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7",
			},
		},
		{
			name: "symlinks relative and absolute",
			layers: [][]E{
				{{Name: "usr/bin/ls", Body: "ls", Mode: 0o755}, {Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"}, {Name: "etc/localtime", Type: tar.TypeSymlink, Link: "/usr/share/zoneinfo/UTC"}},
			},
			want: []string{
				"bin symlink -> usr/bin",
				"etc dir 0755",
				"etc/localtime symlink -> /usr/share/zoneinfo/UTC",
				"usr dir 0755",
				"usr/bin dir 0755",
				"usr/bin/ls file 0755 2 c7b68ac37f364473e922936708e7f43c293dd07b295171566c07ff5fe024fab9",
			},
		},
		{
			name: "file replaced by directory and directory by file",
			layers: [][]E{
				{{Name: "x", Body: "file"}, {Name: "y/inner", Body: "i"}},
				{{Name: "x/", Type: tar.TypeDir}, {Name: "x/in", Body: "i"}, {Name: "y", Body: "now a file"}},
			},
			want: []string{
				"x dir 0755",
				"x/in file 0644 1 de7d1b721a1e0632b7cf04edf5032c8ecffa9f9a08492152b926f1a5a7e765d7",
				"y file 0644 10 92af885f330ed4b19948c1dd44dbed553840556063d5061346be12d7a06476d0",
			},
		},
		{
			name:   "long PAX names",
			layers: [][]E{{{Name: long, Body: "p"}}},
			want:   nil, // checked below
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "root")
			if err := apply(t, dir, tc.layers...); err != nil {
				t.Fatalf("apply: %v", err)
			}
			got := stagetest.Listing(t, dir)
			if tc.want == nil {
				if _, err := os.Stat(filepath.Join(dir, long)); err != nil {
					t.Errorf("long name not extracted: %v (tree: %q)", err, got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHardLinkSharesInode(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "root")
	if err := apply(t, dir, []E{{Name: "d/f", Body: "data"}, {Name: "d/h", Type: tar.TypeLink, Link: "d/f"}}); err != nil {
		t.Fatal(err)
	}
	a, err := os.Stat(filepath.Join(dir, "d/f"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(filepath.Join(dir, "d/h"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(a, b) {
		t.Errorf("d/h is not a hard link of d/f")
	}
}

func TestApplyRefusesUnsafeEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		layers [][]E
		entry  string // the entry the error must name
	}{
		{name: "dot dot", layers: [][]E{{{Name: "../evil", Body: "x"}}}, entry: "../evil"},
		{name: "dot dot inside", layers: [][]E{{{Name: "a/../../evil", Body: "x"}}}, entry: "a/../../evil"},
		{name: "absolute", layers: [][]E{{{Name: "/evil", Body: "x"}}}, entry: "/evil"},
		{name: "symlink climbing out", layers: [][]E{{{Name: "a/l", Type: tar.TypeSymlink, Link: "../../outside"}}}, entry: "a/l"},
		{name: "write through an absolute symlink", layers: [][]E{{{Name: "l", Type: tar.TypeSymlink, Link: "/"}, {Name: "l/evil", Body: "x"}}}, entry: "l/evil"},
		{name: "write through a symlink of an earlier layer", layers: [][]E{{{Name: "l", Type: tar.TypeSymlink, Link: "/tmp"}}, {{Name: "l/evil", Body: "x"}}}, entry: "l/evil"},
		{name: "hard link climbing out", layers: [][]E{{{Name: "h", Type: tar.TypeLink, Link: "../outside"}}}, entry: "h"},
		{name: "hard link absolute", layers: [][]E{{{Name: "h", Type: tar.TypeLink, Link: "/etc/passwd"}}}, entry: "h"},
		{name: "hard link through a symlink", layers: [][]E{{{Name: "s", Type: tar.TypeSymlink, Link: "/etc"}, {Name: "h", Type: tar.TypeLink, Link: "s/passwd"}}}, entry: "h"},
		{name: "whiteout of the parent", layers: [][]E{{{Name: "a/.wh.."}}}, entry: "a/.wh.."},
		{name: "whiteout of the root's parent", layers: [][]E{{{Name: ".wh.."}}}, entry: ".wh.."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside")
			if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "root")
			err := apply(t, dir, tc.layers...)
			if err == nil {
				t.Fatalf("apply succeeded, want an error naming %q", tc.entry)
			}
			if !strings.Contains(err.Error(), `"`+tc.entry+`"`) {
				t.Errorf("error %q does not name entry %q", err, tc.entry)
			}
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("error %q is not ErrUnsafeEntry", err)
			}
			got := stagetest.Listing(t, parent)
			for _, l := range got {
				if !strings.HasPrefix(l, "root") && !strings.HasPrefix(l, "outside file 0644 4 ") {
					t.Errorf("written outside the target: %s", l)
				}
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
				t.Errorf("file outside changed: %q, %v", b, err)
			}
		})
	}
}

func TestUnsafeSentinel(t *testing.T) {
	t.Parallel()
	err := apply(t, filepath.Join(t.TempDir(), "root"), []E{{Name: "../x", Body: "x"}})
	if !errors.Is(err, ErrUnsafeEntry) {
		t.Errorf("error %v is not ErrUnsafeEntry", err)
	}
}

func TestApplyStopsOnCancel(t *testing.T) {
	t.Parallel()
	tree, err := New(filepath.Join(t.TempDir(), "root"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = tree.Apply(ctx, bytes.NewReader(fixture.LayerTar(fixture.Layer{E{Name: "f", Body: "x"}})))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context = %v, want context.Canceled", err)
	}
}
