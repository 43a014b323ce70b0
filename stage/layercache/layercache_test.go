package layercache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	digest "github.com/opencontainers/go-digest"
)

var entry = Entry{CompressedDigest: digest.FromString("x"), CompressedSize: 12, MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", FiltersHash: "none"}

func TestRecordLookupSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "cache.json")
	c, warn := Open(path)
	if warn != nil {
		t.Fatal(warn)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a clean cache was written: %v", err)
	}
	c.Record("k1", entry)
	other := entry
	other.FiltersHash = "0123456789abcdef"
	c.Record("k2", other)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}

	c2, warn := Open(path)
	if warn != nil {
		t.Fatal(warn)
	}
	tests := []struct {
		key, hash string
		ok        bool
	}{
		{"k1", "none", true},
		{"k1", "0123456789abcdef", false},
		{"k2", "0123456789abcdef", true},
		{"k3", "none", false},
	}
	for _, tc := range tests {
		t.Run(tc.key+"/"+tc.hash, func(t *testing.T) {
			e, ok := c2.Lookup(tc.key, tc.hash)
			if ok != tc.ok {
				t.Fatalf("Lookup ok %v, want %v", ok, tc.ok)
			}
			if ok {
				if diff := cmp.Diff(tc.hash, e.FiltersHash); diff != "" {
					t.Error(diff)
				}
				if diff := cmp.Diff(entry, e, cmpopts.IgnoreFields(Entry{}, "FiltersHash", "Timestamp")); diff != "" {
					t.Error(diff)
				}
			}
		})
	}

	// The format: version 1, indent 2, the original's keys in order.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "{\n  \"version\": 1,\n  \"layers\": {\n    \"k1\": {\n      \"compressed_digest\": \"sha256:") {
		t.Errorf("file layout:\n%s", b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	ts := raw["layers"].(map[string]any)["k1"].(map[string]any)["timestamp"].(string)
	if !strings.HasSuffix(ts, "+00:00") || !strings.Contains(ts, "T") {
		t.Errorf("timestamp %q is not a UTC ISO date", ts)
	}
	// Overwrite replaces.
	c2.Record("k1", other)
	if _, ok := c2.Lookup("k1", "none"); ok {
		t.Error("old record survived an overwrite")
	}
}

func TestCorruptOrOtherVersionIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"corrupt": "{not json",
		"version": `{"version": 2, "layers": {"k": {"filters_hash": "none"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.json")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			c, warn := Open(path)
			if warn == nil {
				t.Error("no warning")
			}
			if c.Len() != 0 {
				t.Errorf("%d entries, want none", c.Len())
			}
		})
	}
}

func TestFiltersHash(t *testing.T) {
	tests := []struct {
		comp    string
		filters []string
		want    string
	}{
		{"gzip", nil, "none"},
		{"zstd", nil, "?"},
		{"gzip", []string{"normalize-timestamps"}, "?"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		got := FiltersHash(tc.comp, tc.filters)
		if tc.want != "?" && got != tc.want {
			t.Errorf("FiltersHash(%s, %v) = %s, want %s", tc.comp, tc.filters, got, tc.want)
		}
		if tc.want == "?" && len(got) != 16 {
			t.Errorf("FiltersHash(%s, %v) = %q, want 16 hex digits", tc.comp, tc.filters, got)
		}
		if seen[got] {
			t.Errorf("FiltersHash collision: %s", got)
		}
		seen[got] = true
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _ := Open(filepath.Join(t.TempDir(), "c.json"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				k := string(rune('a'+i)) + string(rune('a'+j%26))
				c.Record(k, entry)
				c.Lookup(k, "none")
				if j%10 == 0 {
					if err := c.Save(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() != 8*26 {
		t.Errorf("%d entries, want %d", c.Len(), 8*26)
	}
}
