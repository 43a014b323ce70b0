package dir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/sinks/internal/names"
	"github.com/occystrap/occystrap/stage"
)

// Options tune a Writer.
type Options struct {
	// UniqueNames names the manifest after the image
	// (manifest-<image>-<tag>.json, with "/" as "_") and adds ImageName to
	// it, so that many images can share the directory.
	UniqueNames bool
	// Expand also writes the merged root filesystem into
	// PATH/<manifest name without .json>/.
	Expand bool
	// Parallel is how many layers of one image are written at once. Default 4.
	Parallel int
	// SameOwner applies the owners recorded in the layers to the expanded
	// tree (only root may).
	SameOwner bool
	// Reserved claims layer names besides the ones dir:// reserves
	// (package sinks/internal/names); such a layer is refused.
	Reserved names.Reserved
}

// Writer is an output directory. Create it with New.
type Writer struct {
	path string
	opts Options
	// catalog guards PATH/catalog.json for the whole process.
	catalog *sync.Mutex

	mu     sync.Mutex
	closed bool
	// sizes holds, per image, the size of each layer.tar it wrote or found,
	// for Verify.
	sizes map[stage.Image]map[string]int64
	// writing holds the layers being written, so that images sharing a
	// layer write it once: the others wait and then find it in place.
	writing map[string]chan struct{}
}

// catalogLocks holds one mutex per absolute catalog path. It is the one
// process-wide state of this package: every Writer on the same directory,
// wherever it was made, must take the same lock.
var catalogLocks sync.Map

// New opens (and creates, if needed) the output directory path.
func New(path string, opts Options) (*Writer, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if err := os.MkdirAll(path, 0o777); err != nil { // less the umask
		return nil, fmt.Errorf("create output directory %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Join(path, "catalog.json"))
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", path, err)
	}
	// What a killed run left here goes now, before anything is written: the
	// top level (manifests, catalog, expanded trees), each layer's folder and
	// config folders, never an expanded tree's or a layer tree's content.
	// Best effort: a temporary that cannot be removed is in no one's way.
	_, _ = beneath.RemoveMatching(path, ".", 2, tempname.Stale, func(_, name string) bool {
		return !names.Dir(name) && !names.Bundle(name) && name != "layer"
	})
	mu, _ := catalogLocks.LoadOrStore(abs, &sync.Mutex{})
	return &Writer{path: path, opts: opts, catalog: mu.(*sync.Mutex), sizes: map[stage.Image]map[string]int64{}, writing: map[string]chan struct{}{}}, nil
}

// Path is the output directory.
func (w *Writer) Path() string { return w.path }

// Sink returns the sink that writes img into the directory.
func (w *Writer) Sink(img stage.Image) (stage.Sink, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	return &imageSink{w: w, img: img}, nil
}

// Has reports whether the layer named name is already in the directory
// (PATH/<name>/layer.tar exists), so that a source may skip fetching it and
// send it with a nil Body. It is safe to call concurrently.
func (w *Writer) Has(name string) bool {
	if w.checkLayer(name) != nil {
		return false
	}
	fi, err := beneath.Lstat(w.path, layerRel(name))
	return err == nil && fi.Mode().IsRegular()
}

// layerRel is the path of layer name's file, relative to the directory.
func layerRel(name string) string { return name + "/" + names.LayerFile }

// claim makes this caller the one writer of layer name until done is
// called, waiting while another sink of the Writer writes it.
func (w *Writer) claim(ctx context.Context, name string) (done func(), err error) {
	for {
		w.mu.Lock()
		ch, busy := w.writing[name]
		if !busy {
			ch = make(chan struct{})
			w.writing[name] = ch
			w.mu.Unlock()
			return func() {
				w.mu.Lock()
				delete(w.writing, name)
				w.mu.Unlock()
				close(ch)
			}, nil
		}
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the output. Sinks already handed out finish what they write;
// no new one may be made. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

// ManifestName is the manifest's file name for img.
func (w *Writer) ManifestName(img stage.Image) string {
	if !w.opts.UniqueNames {
		return "manifest.json"
	}
	return "manifest-" + strings.ReplaceAll(img.Name, "/", "_") + "-" + strings.ReplaceAll(img.Tag, "/", "_") + ".json"
}

// ExpandDir is where Expand writes the merged tree of img.
func (w *Writer) ExpandDir(img stage.Image) string {
	return filepath.Join(w.path, w.expandName(img))
}

// expandName is ExpandDir relative to the directory.
func (w *Writer) expandName(img stage.Image) string {
	return strings.TrimSuffix(w.ManifestName(img), ".json")
}

func (w *Writer) recordSizes(img stage.Image, sizes map[string]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sizes[img] = sizes
}

func (w *Writer) recordedSize(img stage.Image, layer string) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, ok := w.sizes[img][layer]
	return n, ok
}

// manifestEntry is one element of the manifest, keys in sorted order.
type manifestEntry struct {
	Config    string   `json:"Config"`
	ImageName string   `json:"ImageName,omitempty"`
	Layers    []string `json:"Layers"`
	RepoTags  []string `json:"RepoTags"`
}

// repoTag is the original's RepoTags entry: the last path part of the
// image's name, a colon, and the tag.
func repoTag(img stage.Image) string {
	return path.Base(img.Name) + ":" + img.Tag
}

func (w *Writer) writeManifest(img stage.Image, config string, layers []string) (string, error) {
	e := manifestEntry{Config: config, Layers: layers, RepoTags: []string{repoTag(img)}}
	if w.opts.UniqueNames {
		e.ImageName = img.Name
	}
	if e.Layers == nil {
		e.Layers = []string{}
	}
	b, err := pyjson.Indent([]manifestEntry{e}, "    ")
	if err != nil {
		return "", fmt.Errorf("encode manifest of %s: %w", img, err)
	}
	name := w.ManifestName(img)
	if err := atomicfile.WriteFileAt(w.path, name, b); err != nil {
		return "", fmt.Errorf("write manifest of %s: %w", img, err)
	}
	return name, nil
}

// addToCatalog records img's manifest in catalog.json: read, modify and
// write back under the process-wide lock of this catalog and, across
// processes, an exclusive flock on .catalog.json.lock beside it, so writers
// sharing the output (shards of one bulk run) never lose each other's
// entries.
func (w *Writer) addToCatalog(img stage.Image, manifest string) error {
	w.catalog.Lock()
	defer w.catalog.Unlock()
	const rel = "catalog.json"
	name := filepath.Join(w.path, rel)
	unlock, err := lockFile(filepath.Join(w.path, catalogLockName))
	if err != nil {
		return fmt.Errorf("lock catalog %s: %w", name, err)
	}
	defer unlock()
	cat := map[string]map[string]string{}
	b, err := beneath.ReadFile(w.path, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read catalog %s: %w", name, err)
	default:
		if err := json.Unmarshal(b, &cat); err != nil {
			return fmt.Errorf("read catalog %s: %w", name, err)
		}
		if cat == nil {
			cat = map[string]map[string]string{}
		}
	}
	if cat[img.Name] == nil {
		cat[img.Name] = map[string]string{}
	}
	cat[img.Name][img.Tag] = manifest
	out, err := pyjson.Indent(cat, "    ")
	if err != nil {
		return fmt.Errorf("encode catalog %s: %w", name, err)
	}
	if err := atomicfile.WriteFileAt(w.path, rel, out); err != nil {
		return fmt.Errorf("write catalog: %w", err)
	}
	return nil
}

// checkLayer refuses a layer name that is not one plain path component of
// the output's own scheme (package sinks/internal/names).
func (w *Writer) checkLayer(name string) error {
	return names.Layer(name, w.reserved)
}

// checkConfig refuses a config name that is not a plain relative path of
// the output's own scheme.
func (w *Writer) checkConfig(name string) error {
	return names.Config(name, w.reserved)
}

// reserved claims the names dir:// reserves and Options.Reserved.
func (w *Writer) reserved(name string) bool {
	return names.Dir(name) || w.opts.Reserved != nil && w.opts.Reserved(name)
}
