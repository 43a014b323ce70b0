package layercache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDigestsRoundTrip(t *testing.T) {
	t.Parallel()
	cache := filepath.Join(t.TempDir(), "sub", "cache.json")
	d, warn := OpenDigests(cache)
	if warn != nil || d.Len() != 0 {
		t.Fatalf("missing file: %v, %d mappings", warn, d.Len())
	}
	if d.Path() != cache+".digests" {
		t.Errorf("Path = %s", d.Path())
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path()); !os.IsNotExist(err) {
		t.Errorf("an unchanged map was written (%v)", err)
	}
	d.Record("c1", "d1")
	d.Record("c2", "d1")
	d.Record("c3", "d2")
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	// The original's format: version 1, indent 2.
	want := "{\n  \"version\": 1,\n  \"mappings\": {\n    \"c1\": \"d1\",\n    \"c2\": \"d1\",\n    \"c3\": \"d2\"\n  }\n}"
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	again, warn := OpenDigests(cache)
	if warn != nil {
		t.Fatal(warn)
	}
	if diff := cmp.Diff([]string{"c1", "c2"}, again.Compressed("d1")); diff != "" {
		t.Errorf("Compressed(d1) (-want +got):\n%s", diff)
	}
	if got := again.Compressed("d9"); len(got) != 0 {
		t.Errorf("Compressed(d9) = %v", got)
	}
}

func TestDigestsCorruptOrOtherVersionIgnored(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{"corrupt": "{not json", "version": `{"version": 2, "mappings": {"c": "d"}}`} {
		cache := filepath.Join(t.TempDir(), "cache.json")
		if err := os.WriteFile(cache+".digests", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		d, warn := OpenDigests(cache)
		if warn == nil || !strings.Contains(warn.Error(), "ignoring") || d.Len() != 0 {
			t.Errorf("%s: warning %v, %d mappings", name, warn, d.Len())
		}
		d.Record("c", "d")
		if err := d.Save(); err != nil {
			t.Fatal(err)
		}
		var f struct {
			Version  int
			Mappings map[string]string
		}
		b, _ := os.ReadFile(cache + ".digests")
		if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Mappings["c"] != "d" {
			t.Errorf("%s: rewritten as %s (%v)", name, b, err)
		}
	}
}
