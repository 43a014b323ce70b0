package layercache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/internal/umask"
)

// DigestsSuffix names the companion of a layer cache file FILE: FILE.digests.
const DigestsSuffix = ".digests"

// Digests is the layer cache's companion file, FILE.digests, in the
// original's format: {"version": 1, "mappings": {compressed hex: DiffID hex}}.
// It remembers which compressed blob a Docker engine pushed for each layer,
// so that a later dockerpush:// run can tell the engine it already has the
// blobs of the layers the output holds, and the engine does not send them.
// Safe for concurrent use.
type Digests struct {
	path string

	mu       sync.Mutex
	mappings map[string]string
	dirty    bool
}

type digestsFile struct {
	Version  int               `json:"version"`
	Mappings map[string]string `json:"mappings"`
}

// OpenDigests reads the companion of the layer cache at cachePath. As for
// the cache, a missing file gives an empty map, and a corrupt one or one of
// another version an empty map and a non-nil warning.
func OpenDigests(cachePath string) (d *Digests, warning error) {
	d = &Digests{path: cachePath + DigestsSuffix, mappings: map[string]string{}}
	b, err := os.ReadFile(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("layer digests %s: %w", d.path, err)
	}
	var f digestsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return d, fmt.Errorf("layer digests %s are corrupt, ignoring them: %w", d.path, err)
	}
	if f.Version != Version {
		return d, fmt.Errorf("layer digests %s have version %d, not %d; ignoring them", d.path, f.Version, Version)
	}
	if f.Mappings != nil {
		d.mappings = f.Mappings
	}
	return d, nil
}

// Path is the file's path.
func (d *Digests) Path() string { return d.path }

// Record remembers that the compressed blob compressedHex holds the layer
// diffIDHex.
func (d *Digests) Record(compressedHex, diffIDHex string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mappings[compressedHex] == diffIDHex {
		return
	}
	d.mappings[compressedHex] = diffIDHex
	d.dirty = true
}

// Compressed returns, sorted, the compressed blobs recorded for the layer
// diffIDHex.
func (d *Digests) Compressed(diffIDHex string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for c, id := range d.mappings {
		if id == diffIDHex {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// Len is the number of mappings.
func (d *Digests) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.mappings)
}

// Save writes the file, atomically, if something changed since it was read
// or saved.
func (d *Digests) Save() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty {
		return nil
	}
	b, err := json.MarshalIndent(digestsFile{Version: Version, Mappings: d.mappings}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(d.path, b); err != nil {
		return fmt.Errorf("layer digests %s: %w", d.path, err)
	}
	d.dirty = false
	return nil
}

// writeAtomic writes b to path through a temporary file in its directory
// (made if missing), with the mode a new file gets under the umask.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil { // less the umask
		return err
	}
	// The file is the user's path; its temporary is made beside it with
	// O_EXCL, named after its owner (a later run removes it if this one is
	// killed), and renamed over it (a symlink there is replaced, not followed).
	tmp, err := os.CreateTemp(dir, tempname.Output(filepath.Base(path))+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil { // CreateTemp makes it 0600
		err = tmp.Chmod(umask.File())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
