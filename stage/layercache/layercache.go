package layercache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/tempname"
)

// Version is the file format version.
const Version = 1

// LayerRewriteVersion is the original's tarformat.LAYER_REWRITE_VERSION,
// mixed into the filters hash when filters are set.
const LayerRewriteVersion = 2

// Entry is what a push made of one layer.
type Entry struct {
	CompressedDigest digest.Digest `json:"compressed_digest"`
	CompressedSize   int64         `json:"compressed_size"`
	MediaType        string        `json:"media_type"`
	FiltersHash      string        `json:"filters_hash"`
	Timestamp        string        `json:"timestamp"`
}

type file struct {
	Version int              `json:"version"`
	Layers  map[string]Entry `json:"layers"`
}

// Cache is an open layer cache file.
type Cache struct {
	path string

	mu     sync.Mutex
	layers map[string]Entry
	dirty  bool
}

// Open reads path. A missing file gives an empty cache; a corrupt one or one
// of another version gives an empty cache and a non-nil warning.
func Open(path string) (c *Cache, warning error) {
	c = &Cache{path: path, layers: map[string]Entry{}}
	// What a killed run's Save left beside the file goes now (best effort).
	_, _ = beneath.RemoveMatching(filepath.Dir(path), ".", 0, tempname.Stale, nil)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("layer cache %s: %w", path, err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return c, fmt.Errorf("layer cache %s is corrupt, ignoring it: %w", path, err)
	}
	if f.Version != Version {
		return c, fmt.Errorf("layer cache %s has version %d, not %d; ignoring it", path, f.Version, Version)
	}
	if f.Layers != nil {
		c.layers = f.Layers
	}
	return c, nil
}

// Lookup returns key's entry if it was recorded under filtersHash.
func (c *Cache) Lookup(key, filtersHash string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.layers[key]
	if !ok || e.FiltersHash != filtersHash {
		return Entry{}, false
	}
	return e, true
}

// Record stores key's entry (its timestamp set to now), replacing any other.
func (c *Cache) Record(key string, e Entry) {
	e.Timestamp = time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.layers[key] = e
	c.dirty = true
}

// Len is the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.layers)
}

// Save writes the file if something changed since it was read or saved.
func (c *Cache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	b, err := json.MarshalIndent(file{Version: Version, Layers: c.layers}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(c.path, b); err != nil {
		return fmt.Errorf("layer cache %s: %w", c.path, err)
	}
	c.dirty = false
	return nil
}

// FiltersHash is the original's filters_hash: "none" with no filters and
// gzip; otherwise the first 16 hex digits of the sha256 of the compact,
// key-sorted JSON {"compression": .., "filters": [the -f specs in order]},
// which, when filters are set, also holds "layer_rewrite_version": 2 (the
// original's exact key for it is unconfirmed).
func FiltersHash(compression string, filters []string) string {
	if len(filters) == 0 && compression == "gzip" {
		return "none"
	}
	v := map[string]any{"compression": compression, "filters": append([]string{}, filters...)}
	if len(filters) > 0 {
		v["layer_rewrite_version"] = LayerRewriteVersion
	}
	// Maps encode with sorted keys; compact, and no HTML escaping, like
	// Python's json.dumps(sort_keys=True, separators=(",", ":")).
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	sum := sha256.Sum256(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:])[:16]
}
