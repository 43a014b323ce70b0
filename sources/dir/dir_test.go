package dir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "catalog.json", `{"app": {"v1": "manifest.json", "bad": "../m.json", "esc": "esc.json"}}`)
	write(t, dir, "manifest.json", `[{"Config": "c.json", "Layers": ["l1/layer.tar"], "RepoTags": ["app:v1"]}]`)
	write(t, dir, "esc.json", `[{"Config": "../c.json", "Layers": []}]`)
	write(t, dir, "c.json", `{"rootfs": {"diff_ids": ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`)
	write(t, dir, "l1/layer.tar", "layer")

	s, err := Open(dir, "app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if s.configName != "c.json" || len(s.layers) != 1 || len(s.diffIDs) != 1 {
		t.Errorf("Open read config %q, layers %q, diff_ids %v", s.configName, s.layers, s.diffIDs)
	}
	if _, err := Open(dir, "app", "v2"); !errors.Is(err, ErrNoSuchImage) || !strings.Contains(err.Error(), "app:v2") {
		t.Errorf("unknown tag: %v, want ErrNoSuchImage naming app:v2", err)
	}
	if _, err := Open(t.TempDir(), "app", "v1"); !errors.Is(err, ErrNoSuchImage) {
		t.Errorf("no catalog: %v, want ErrNoSuchImage", err)
	}
	for _, tag := range []string{"bad", "esc"} {
		if _, err := Open(dir, "app", tag); err == nil || !strings.Contains(err.Error(), "outside the directory") {
			t.Errorf("tag %s: %v, want a refusal of a path outside the directory", tag, err)
		}
	}
}
