package tempname

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/beneath"
)

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRemoveStale(t *testing.T) {
	root := t.TempDir()
	dead := namespace() + "." + strconv.Itoa(deadPid(t))
	live := namespace() + ".1" // init runs as long as the machine
	other := "0badc0de." + strconv.Itoa(deadPid(t))
	files := map[string]bool{ // name -> stale
		OutputPrefix + dead + "-manifest.json-123":           true,
		OutputPrefix + dead + "-manifest-x_app-v1-456":       true, // a directory, below
		"layer/" + OutputPrefix + dead + "-layer.tar-1":      true,
		"layer/" + OutputPrefix + Owner() + "-layer.tar-2":   false, // this process
		"occystrap-layer-" + dead + "-99.tar":                true,
		"occystrap-layer-" + live + "-98.tar":                false,
		"occystrap-layer-" + other + "-97.tar":               false, // another host or container
		"occystrap-layer-12345.tar":                          false, // no owner: an older scheme
		".occystrap-tmp-manifest.json-77":                    false,
		"manifest-x_app-v1/" + OutputPrefix + dead + "-evil": false, // image content: not descended into
		"notours": false,
	}
	for n := range files {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree := filepath.Join(root, OutputPrefix+dead+"-manifest-x_app-v1-456")
	os.Remove(tree)
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale-looking symlink is removed itself, never followed.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, OutputPrefix+dead+"-link")); err != nil {
		t.Fatal(err)
	}
	removed, err := beneath.RemoveMatching(root, ".", 1, Stale, func(rel, name string) bool { return name == "layer" })
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	var want []string
	for n, stale := range files {
		if stale {
			want = append(want, n)
		}
	}
	want = append(want, OutputPrefix+dead+"-link")
	sort.Strings(want)
	if d := cmp.Diff(want, removed); d != "" {
		t.Errorf("removed (-want +got):\n%s", d)
	}
	for n, stale := range files {
		if _, err := os.Lstat(filepath.Join(root, n)); (err == nil) == stale {
			t.Errorf("%s: exists %v, stale %v", n, err == nil, stale)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("removal followed a symlink: %v", err)
	}
}

func TestCreate(t *testing.T) {
	f, err := Create(t.TempDir(), "layer", ".tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := filepath.Base(f.Name())
	if o, ok := ownerOf(name); !ok || o != Owner() || filepath.Ext(name) != ".tar" {
		t.Errorf("%s: owner %q, %v", name, o, ok)
	}
	if Stale(name) {
		t.Errorf("this process's own temporary is stale")
	}
}
