package mounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/umask"
	"github.com/occystrap/occystrap/sinks/dir"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/sinks/internal/bundle"
	"github.com/occystrap/occystrap/sinks/internal/names"
	"github.com/occystrap/occystrap/stage"
)

// Directory names in PATH besides the layers.
const (
	Working = "working"
	Delta   = "delta"
	// LayerDir is the name of a layer's tree in its folder.
	LayerDir = "layer"
)

// Options tune a Writer.
type Options struct {
	// Parallel is how many layers are written, and then extracted, at once.
	// Default 4.
	Parallel int
	// SameOwner applies the owners recorded in the layers to their trees
	// (only root may).
	SameOwner bool
}

// Writer is a mounts:// output directory. Create it with New.
type Writer struct {
	path string
	opts Options
	dir  *dir.Writer

	mu     sync.Mutex
	closed bool
}

// New opens (and creates, if needed) the output directory path.
func New(path string, opts Options) (*Writer, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	// A layer's tree is an overlay lower directory, whose path may not hold
	// the mount options' separators.
	d, err := dir.New(path, dir.Options{Parallel: opts.Parallel, Reserved: names.Any(names.Bundle, func(name string) bool {
		return strings.ContainsAny(name, ",:")
	})})
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, opts: opts, dir: d}, nil
}

// Path is the output directory.
func (w *Writer) Path() string { return w.path }

// Has reports whether the layer named name is complete in the directory:
// its layer.tar and its tree. It is safe to call concurrently.
func (w *Writer) Has(name string) bool {
	if !w.dir.Has(name) {
		return false
	}
	fi, err := beneath.Lstat(w.path, name+"/"+LayerDir)
	return err == nil && fi.IsDir()
}

// Sink returns the sink that writes img into the directory and mounts it.
func (w *Writer) Sink(img stage.Image) (stage.Sink, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	ds, err := w.dir.Sink(img)
	if err != nil {
		return nil, err
	}
	return &imageSink{w: w, img: img, dir: ds}, nil
}

// Close ends the output; it is safe to call more than once. It does not
// unmount rootfs.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.dir.Close()
}

type imageSink struct {
	w   *Writer
	img stage.Image
	dir stage.Sink
}

// Properties: layers in any order; a layer whose layer.tar is in place may
// be skipped by the source (its tree, if missing, is made from that file).
func (s *imageSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "mounts", Has: s.w.dir.Has}
}

// manifest is the dir:// manifest, read back.
type manifest struct {
	Config string   `json:"Config"`
	Layers []string `json:"Layers"`
}

// Consume writes the layer files, manifest and catalog (as dir://), extracts
// each layer's tree, and mounts the overlay.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.img.String()).Str("sink", "mounts").Logger()
	ctx = log.WithContext(ctx)
	// Refuse a mounted rootfs before anything is written.
	if err := checkNotMounted(s.w.path); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	if err := s.dir.Consume(ctx, in); err != nil {
		return err
	}
	mpath := filepath.Join(s.w.path, s.w.dir.ManifestName(s.img))
	b, err := beneath.ReadFile(s.w.path, s.w.dir.ManifestName(s.img))
	if err != nil {
		return fmt.Errorf("image %s: read manifest: %w", s.img, err)
	}
	var ms []manifest
	if err := json.Unmarshal(b, &ms); err != nil || len(ms) != 1 {
		return fmt.Errorf("image %s: manifest %s is not one entry (%v)", s.img, mpath, err)
	}
	m := ms[0]
	names := make([]string, 0, len(m.Layers))
	for _, l := range m.Layers {
		names = append(names, strings.TrimSuffix(l, "/layer.tar"))
	}
	if err := s.extractAll(ctx, names); err != nil {
		return err
	}
	if err := s.bundle(ctx, m.Config, names); err != nil {
		return err
	}
	log.Debug().Int("layers", len(names)).Str("rootfs", filepath.Join(s.w.path, bundle.RootFS)).Msg("Overlay mounted")
	return nil
}

// extractAll makes the tree of every layer that has none, Parallel at once.
func (s *imageSink) extractAll(ctx context.Context, names []string) error {
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(s.w.opts.Parallel)
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p.Go(func(ctx context.Context) error { return s.extractLayer(ctx, n) })
	}
	return p.Wait()
}

// extractLayer extracts PATH/<name>/layer.tar into PATH/<name>/layer/,
// through a temporary directory, unless the tree is there.
func (s *imageSink) extractLayer(ctx context.Context, name string) (err error) {
	finalRel := name + "/" + LayerDir
	final := filepath.Join(s.w.path, finalRel)
	if fi, err := beneath.Lstat(s.w.path, finalRel); err == nil && fi.IsDir() {
		zerolog.Ctx(ctx).Debug().Str("layer", name).Msg("Layer tree already in the output directory, not extracted again")
		return nil
	} else if err == nil {
		return fmt.Errorf("layer tree %s: not a directory", final)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("layer tree %s: %w", final, err)
	}
	tmp, err := beneath.MkdirTemp(s.w.path, name, atomicfile.TempName(LayerDir)+"-*")
	if err != nil {
		return fmt.Errorf("image %s: layer %s: %w", s.img, name, err)
	}
	defer func() {
		if err != nil {
			_ = beneath.RemoveAll(s.w.path, tmp)
		}
	}()
	if err := beneath.Chmod(s.w.path, tmp, umask.Dir()); err != nil { // MkdirTemp makes it 0700
		return fmt.Errorf("image %s: layer %s: %w", s.img, name, err)
	}
	// The tree was just made under a fresh name: its path holds no symlink,
	// and extraction (an os.Root) never leaves it.
	tree, err := extract.New(filepath.Join(s.w.path, tmp), extract.Options{SameOwner: s.w.opts.SameOwner, Overlay: true})
	if err != nil {
		return err
	}
	defer tree.Close()
	f, err := beneath.Open(s.w.path, name+"/layer.tar")
	if err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	defer f.Close()
	if err := tree.Apply(ctx, f); err != nil {
		return fmt.Errorf("image %s: extract layer %s: %w", s.img, name, err)
	}
	if err := tree.Close(); err != nil {
		return fmt.Errorf("image %s: extract layer %s: %w", s.img, name, err)
	}
	if err := beneath.Rename(s.w.path, tmp, finalRel); err != nil {
		return fmt.Errorf("image %s: move layer tree into %s: %w", s.img, final, err)
	}
	return nil
}

// bundle is the original's write_bundle: rootfs, working and delta, the
// overlay mount, then the configs. On failure it undoes what it did.
func (s *imageSink) bundle(ctx context.Context, configName string, names []string) (err error) {
	cfg, err := beneath.ReadFile(s.w.path, configName)
	if err != nil {
		return fmt.Errorf("image %s: read config: %w", s.img, err)
	}
	if _, err := bundle.RuntimeConfig(cfg); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	abs, err := filepath.Abs(s.w.path)
	if err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	rootfs := filepath.Join(abs, bundle.RootFS)
	if err := checkNotMounted(abs); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	var made []string
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = os.Remove(made[i]) // only if empty
			}
		}
	}()
	for _, d := range []string{bundle.RootFS, Working, Delta} {
		created, err := mkdirOwn(abs, d)
		if err != nil {
			return fmt.Errorf("image %s: create %s: %w", s.img, filepath.Join(abs, d), err)
		}
		if created {
			made = append(made, filepath.Join(abs, d))
		}
	}
	// Newest layer first; a layer that occurs twice only at its newest place.
	// The mount resolves these paths itself: each must be a real directory
	// (no symlink anywhere below the output) when it is handed over.
	var lower []string
	seen := map[string]bool{}
	for i := len(names) - 1; i >= 0; i-- {
		if seen[names[i]] {
			continue
		}
		seen[names[i]] = true
		rel := names[i] + "/" + LayerDir
		if fi, err := beneath.Lstat(abs, rel); err != nil || !fi.IsDir() {
			return fmt.Errorf("image %s: layer tree %s is not a directory (%v)", s.img, filepath.Join(abs, rel), err)
		}
		lower = append(lower, filepath.Join(abs, rel))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	opts, err := mountOverlay(lower, filepath.Join(abs, Delta), filepath.Join(abs, Working), rootfs)
	if err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	zerolog.Ctx(ctx).Debug().Str("options", opts).Msg("Mounted overlay")
	defer func() {
		if err != nil {
			if uerr := unmount(rootfs); uerr != nil {
				zerolog.Ctx(ctx).Warn().Err(uerr).Str("rootfs", rootfs).Msg("Could not unmount the overlay after a failure")
			}
		}
	}()
	if err := bundle.Write(abs, cfg); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	if configName != bundle.ContainerConfig {
		if err := beneath.Remove(abs, configName); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image %s: move config to %s: %w", s.img, bundle.ContainerConfig, err)
		}
	}
	return nil
}

// checkNotMounted returns ErrMounted when dir/rootfs is a mount point.
func checkNotMounted(dir string) error {
	rootfs := filepath.Join(dir, bundle.RootFS)
	mounted, err := isMountPoint(rootfs)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s: %w; unmount it first (umount %s)", rootfs, ErrMounted, rootfs)
	}
	return nil
}

// mkdirOwn creates root/name and reports whether this call created it. An
// existing symlink there is an error, not followed.
func mkdirOwn(root, name string) (bool, error) {
	err := beneath.Mkdir(root, name, 0o777) // less the umask
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := beneath.Lstat(root, name); serr == nil && fi.IsDir() {
			return false, nil
		}
	}
	return false, err
}
