package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/umask"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/stage"
)

// imageSink writes one image into the Writer's directory.
type imageSink struct {
	w   *Writer
	img stage.Image
}

// Properties: layers in order only with Expand (the merged tree is built
// in layer order; the layer.tar files themselves are written in any
// order); the directory's layers (Writer.Has) may be skipped by the source.
func (s *imageSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "dir", Ordered: s.w.opts.Expand, Has: s.w.Has}
}

// layerDone is a layer whose layer.tar is in place.
type layerDone struct {
	seq  int
	name string
	size int64
}

// Consume writes the image's items as they arrive and finishes the manifest,
// the catalog and the expanded tree when in is closed.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.img.String()).Str("sink", "dir").Logger()
	ctx = log.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := s.w.opts.Parallel
	if s.w.opts.Expand {
		workers++ // the applier holds one slot for the whole run
	}
	p := pool.New().WithContext(ctx).WithMaxGoroutines(workers)
	// fail keeps the first real error (not a cancellation it caused) and
	// stops the receive loop and the other tasks.
	var errs stage.FirstError
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		errs.Record(err)
		cancel()
		return err
	}

	var (
		mu     sync.Mutex
		layers = map[int]layerDone{}
	)
	var done chan layerDone
	var tmpTree string // relative to the directory
	if s.w.opts.Expand {
		done = make(chan layerDone, s.w.opts.Parallel)
		var err error
		tmpTree, err = beneath.MkdirTemp(s.w.path, ".", atomicfile.TempName(s.w.expandName(s.img))+"-*")
		if err != nil {
			return fmt.Errorf("create expansion directory for %s in %s: %w", s.img, s.w.path, err)
		}
		if err := beneath.Chmod(s.w.path, tmpTree, umask.Dir()); err != nil { // MkdirTemp makes it 0700
			_ = beneath.RemoveAll(s.w.path, tmpTree)
			return fmt.Errorf("create expansion directory for %s in %s: %w", s.img, s.w.path, err)
		}
		defer func() {
			if tmpTree != "" {
				_ = beneath.RemoveAll(s.w.path, tmpTree)
			}
		}()
		// The tree was just made under a fresh name: its path holds no
		// symlink, and extraction (an os.Root) never leaves it.
		p.Go(func(ctx context.Context) error { return fail(s.apply(ctx, filepath.Join(s.w.path, tmpTree), done)) })
	}
	// finished hands a layer whose layer.tar is in place to the applier.
	finished := func(ctx context.Context, d layerDone) error {
		mu.Lock()
		layers[d.seq] = d
		mu.Unlock()
		if done == nil {
			return nil
		}
		select {
		case done <- d:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	var (
		config     string
		haveConfig bool
		seen       = map[int]string{}
		writers    sync.WaitGroup
		loopErr    error
	)
loop:
	for {
		it, ok, _ := stage.Recv(ctx, in)
		if !ok {
			break loop
		}
		switch it.Kind {
		case stage.KindConfig:
			if haveConfig {
				loopErr = fmt.Errorf("image %s: %w %q after %q", s.img, stage.ErrSecondConfig, it.Name, config)
				break loop
			}
			if err := s.writeConfig(it); err != nil {
				loopErr = err
				break loop
			}
			config, haveConfig = it.Name, true
		case stage.KindLayer:
			if prev, dup := seen[it.Seq]; dup {
				_ = it.Release()
				loopErr = fmt.Errorf("image %s: layer %d arrived twice (%s and %s)", s.img, it.Seq, prev, it.Name)
				break loop
			}
			if err := s.w.checkLayer(it.Name); err != nil {
				_ = it.Release()
				loopErr = fmt.Errorf("image %s: %w", s.img, err)
				break loop
			}
			seen[it.Seq] = it.Name
			if it.Skipped() {
				fi, err := beneath.Lstat(s.w.path, layerRel(it.Name))
				if err != nil || !fi.Mode().IsRegular() {
					loopErr = fmt.Errorf("image %s: layer %s: %w", s.img, s.layerPath(it.Name), ErrMissingLayer)
					break loop
				}
				if err := finished(ctx, layerDone{seq: it.Seq, name: it.Name, size: fi.Size()}); err != nil {
					loopErr = err
					break loop
				}
				continue
			}
			writers.Add(1)
			p.Go(func(ctx context.Context) error {
				defer writers.Done()
				n, err := s.writeLayer(ctx, it)
				if err != nil {
					return fail(err)
				}
				return fail(finished(ctx, layerDone{seq: it.Seq, name: it.Name, size: n}))
			})
		default:
			_ = it.Release()
		}
	}
	_ = fail(loopErr)
	writers.Wait()
	if done != nil {
		close(done)
	}
	waitErr := p.Wait()
	if err := errs.Real(); err != nil {
		return err
	}
	if waitErr != nil {
		return waitErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !haveConfig {
		return fmt.Errorf("image %s: %w", s.img, ErrNoConfig)
	}

	seqs := make([]int, 0, len(layers))
	for q := range layers {
		seqs = append(seqs, q)
	}
	sort.Ints(seqs)
	names := make([]string, 0, len(seqs))
	sizes := make(map[string]int64, len(seqs))
	for _, q := range seqs {
		d := layers[q]
		names = append(names, d.name+"/layer.tar")
		sizes[d.name] = d.size
	}
	manifest, err := s.w.writeManifest(s.img, config, names)
	if err != nil {
		return err
	}
	s.w.recordSizes(s.img, sizes)
	if err := s.w.addToCatalog(s.img, manifest); err != nil {
		return err
	}
	if s.w.opts.Expand {
		final := s.w.expandName(s.img)
		if err := beneath.RemoveAll(s.w.path, final); err != nil {
			return fmt.Errorf("replace expanded tree %s: %w", s.w.ExpandDir(s.img), err)
		}
		if err := beneath.Rename(s.w.path, tmpTree, final); err != nil {
			return fmt.Errorf("move expanded tree into %s: %w", s.w.ExpandDir(s.img), err)
		}
		tmpTree = ""
	}
	log.Debug().Int("layers", len(names)).Str("manifest", manifest).Msg("Image written")
	return nil
}

func (s *imageSink) layerPath(name string) string {
	return filepath.Join(s.w.path, name, "layer.tar")
}

func (s *imageSink) writeConfig(it stage.Item) error {
	if err := s.w.checkConfig(it.Name); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	if err := beneath.MkdirAll(s.w.path, path.Dir(it.Name), 0o777); err != nil { // less the umask
		return fmt.Errorf("image %s: create directory for config: %w", s.img, err)
	}
	if err := atomicfile.WriteFileAt(s.w.path, it.Name, it.Data); err != nil {
		return fmt.Errorf("image %s: config: %w", s.img, err)
	}
	return nil
}

// writeLayer writes PATH/<name>/layer.tar, unless it is already there, and
// returns its size. It releases the item's body.
func (s *imageSink) writeLayer(ctx context.Context, it stage.Item) (n int64, err error) {
	defer func() {
		if rerr := it.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release layer %s: %w", it.Name, rerr)
		}
	}()
	done, err := s.w.claim(ctx, it.Name)
	if err != nil {
		return 0, err
	}
	defer done()
	final, rel := s.layerPath(it.Name), layerRel(it.Name)
	if fi, err := beneath.Lstat(s.w.path, rel); err == nil && fi.Mode().IsRegular() {
		zerolog.Ctx(ctx).Debug().Str("layer", it.Name).Msg("Layer already in the output directory, not written again")
		return fi.Size(), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("layer %s: %w", final, err)
	}
	if err := beneath.MkdirAll(s.w.path, it.Name, 0o777); err != nil { // less the umask
		return 0, fmt.Errorf("layer %s: %w", final, err)
	}
	if f, ok := it.Body.(stage.Filer); ok {
		// A finished file (a download or a rewritten layer) is linked into
		// place, not copied, when it is on the same filesystem.
		n, linked, err := atomicfile.LinkAt(s.w.path, rel, f.FilePath(), it.Size)
		if err != nil {
			return n, fmt.Errorf("layer %d of %s: %w", it.Seq, s.img, err)
		}
		if linked {
			return n, nil
		}
	}
	rc, err := it.Body.Open()
	if err != nil {
		return 0, fmt.Errorf("open layer %s of %s: %w", it.Name, s.img, err)
	}
	defer rc.Close()
	n, err = atomicfile.WriteAt(ctx, s.w.path, rel, rc, it.Size)
	if err != nil {
		return n, fmt.Errorf("layer %d of %s: %w", it.Seq, s.img, err)
	}
	return n, nil
}

// apply builds the merged tree in dir from the layers finished on done,
// applying each in Seq order as soon as the ones before it are applied.
func (s *imageSink) apply(ctx context.Context, dir string, done <-chan layerDone) error {
	tree, err := extract.New(dir, extract.Options{SameOwner: s.w.opts.SameOwner})
	if err != nil {
		return err
	}
	defer tree.Close()
	var held stage.Ordered[layerDone]
	for {
		select {
		case d, ok := <-done:
			if !ok {
				if held.Held() > 0 {
					return fmt.Errorf("expand %s: layer %d never arrived (%d later layers did): %w", s.img, held.Next(), held.Held(), stage.ErrMissingLayer)
				}
				return tree.Close()
			}
			if err := held.Put(d.seq, d); err != nil {
				return fmt.Errorf("expand %s: layer %s: %w", s.img, d.name, err)
			}
			for {
				d, ok := held.Pop()
				if !ok {
					break
				}
				if err := s.applyOne(ctx, tree, d); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *imageSink) applyOne(ctx context.Context, tree *extract.Tree, d layerDone) error {
	f, err := beneath.Open(s.w.path, layerRel(d.name))
	if err != nil {
		return fmt.Errorf("expand %s: %w", s.img, err)
	}
	defer f.Close()
	if err := tree.Apply(ctx, f); err != nil {
		return fmt.Errorf("expand %s: layer %s: %w", s.img, d.name, err)
	}
	return nil
}
