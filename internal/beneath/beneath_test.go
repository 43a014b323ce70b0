package beneath

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// setup makes root with a real directory, a symlink to a directory outside
// and a symlink to a file outside; it returns root and the outside
// directory, whose content must never change.
func setup(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "real", "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "inner")); err != nil { // relative, stays inside
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "real", "file")); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func outsideUnchanged(t *testing.T, outside string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("outside directory now holds %v", names)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "secret" {
		t.Errorf("outside file changed: %q, %v", b, err)
	}
}

func TestNoSymlinkFollowed(t *testing.T) {
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "walk"}[walk], func(t *testing.T) {
			noOpenat2.Store(walk)
			t.Cleanup(func() { noOpenat2.Store(false) })
			root, outside := setup(t)
			ops := []struct {
				name string
				op   func() error
				want error
			}{
				{"mkdirall through", func() error { return MkdirAll(root, "evil/x/y", 0o755) }, ErrSymlink},
				{"mkdirall inner link", func() error { return MkdirAll(root, "inner/x", 0o755) }, ErrSymlink},
				{"mkdirall at link", func() error { return MkdirAll(root, "evil", 0o755) }, ErrSymlink},
				{"create through", func() error { f, _, err := CreateTemp(root, "evil", "t-*"); closeIf(f); return err }, ErrSymlink},
				{"open through", func() error { f, err := Open(root, "evil/secret"); closeIf(f); return err }, ErrSymlink},
				{"open at link", func() error { f, err := Open(root, "real/file"); closeIf(f); return err }, ErrSymlink},
				{"write at link", func() error {
					f, err := OpenFile(root, "real/file", os.O_WRONLY|os.O_TRUNC, 0)
					closeIf(f)
					return err
				}, ErrSymlink},
				{"lstat through", func() error { _, err := Lstat(root, "evil/secret"); return err }, ErrSymlink},
				{"rename into", func() error { return Rename(root, "real/sub", "evil/sub") }, ErrSymlink},
				{"link into", func() error {
					return Link(filepath.Join(outside, "secret"), root, "evil/hard")
				}, ErrSymlink},
				{"mkdirtemp through", func() error { _, err := MkdirTemp(root, "evil", "d-*"); return err }, ErrSymlink},
				{"chmod through", func() error { return Chmod(root, "evil/secret", 0o777) }, ErrSymlink},
				{"chmod at link", func() error { return Chmod(root, "real/file", 0o777) }, ErrSymlink},
				{"remove through", func() error { return Remove(root, "evil/secret") }, ErrSymlink},
				{"removeall through", func() error { return RemoveAll(root, "evil/secret") }, ErrSymlink},
				{"dot dot", func() error { return MkdirAll(root, "real/../../x", 0o755) }, ErrOutside},
				{"absolute", func() error { f, err := Open(root, "/etc/passwd"); closeIf(f); return err }, ErrOutside},
			}
			for _, o := range ops {
				if err := o.op(); !errors.Is(err, o.want) {
					t.Errorf("%s: err %v, want %v", o.name, err, o.want)
				}
			}
			fi, err := Lstat(root, "real/file")
			if err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("Lstat of a symlink: %v, %v; want the link itself", fi, err)
			}
			// Removing a tree that holds symlinks removes the links only.
			if err := RemoveAll(root, "real"); err != nil {
				t.Fatal(err)
			}
			if err := RemoveAll(root, "evil"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(root, "evil")); !os.IsNotExist(err) {
				t.Errorf("symlink not removed: %v", err)
			}
			outsideUnchanged(t, outside)
		})
	}
}

func closeIf(f *os.File) {
	if f != nil {
		f.Close()
	}
}

func TestOperations(t *testing.T) {
	root := t.TempDir()
	if err := MkdirAll(root, "a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	f, rel, err := CreateTemp(root, "a/b", ".tmp-*.x")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(rel) != "a/b" || filepath.Ext(rel) != ".x" {
		t.Errorf("temporary name %q", rel)
	}
	if _, err := io.WriteString(f, "data"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := Rename(root, rel, "a/b/c/final"); err != nil {
		t.Fatal(err)
	}
	if err := Chmod(root, "a/b/c/final", 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := Lstat(root, "a/b/c/final")
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 4 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("Lstat = %v, %v", fi, err)
	}
	if err := Link(filepath.Join(root, "a/b/c/final"), root, "a/hard"); err != nil {
		t.Fatal(err)
	}
	g, err := Open(root, "a/hard")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(g)
	g.Close()
	if string(b) != "data" {
		t.Errorf("hard link reads %q", b)
	}
	d, err := MkdirTemp(root, "a", "d-*")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("MkdirTemp made %v, %v", fi, err)
	}
	if err := Remove(root, d); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(root, "a"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(root, "a"); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("root not empty: %v", ents)
	}
}
