package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/extract"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/internal/umask"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/sinks/internal/bundle"
	"github.com/occystrap/occystrap/sinks/internal/gate"
	"github.com/occystrap/occystrap/stage"
)

// Options tune a Writer.
type Options struct {
	// SameOwner applies the owners recorded in the layers to rootfs (only
	// root may).
	SameOwner bool
}

// Writer is a bundle directory. Create it with New.
type Writer struct {
	path string
	opts Options
	gate gate.Gate
}

// New returns the output for the bundle directory path. Nothing is created
// until a sink runs.
func New(path string, opts Options) (*Writer, error) {
	if path == "" {
		return nil, errors.New("oci output: empty path")
	}
	return &Writer{path: path, opts: opts}, nil
}

// Path is the bundle directory.
func (w *Writer) Path() string { return w.path }

// Sink returns the sink that writes img as the bundle.
func (w *Writer) Sink(img stage.Image) (stage.Sink, error) {
	if closed, _ := w.gate.Enter(false); closed {
		return nil, ErrClosed
	}
	return &imageSink{w: w, img: img}, nil
}

// Close ends the output; it is safe to call more than once.
func (w *Writer) Close() error {
	w.gate.Close()
	return nil
}

type imageSink struct {
	w   *Writer
	img stage.Image
}

// Properties: layers in order (they are applied onto rootfs in order).
func (s *imageSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "oci", Ordered: true}
}

// Consume applies the layers as they arrive and puts the bundle in place
// when in is closed.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) (err error) {
	log := zerolog.Ctx(ctx).With().Str("image", s.img.String()).Str("sink", "oci").Logger()
	ctx = log.WithContext(ctx)

	created, err := mkdirOwn(s.w.path)
	if err != nil {
		return fmt.Errorf("create bundle directory %s: %w", s.w.path, err)
	}
	// What a killed run left goes now (best effort).
	_, _ = beneath.RemoveMatching(s.w.path, ".", 0, tempname.Stale, nil)
	tmpRel, err := beneath.MkdirTemp(s.w.path, ".", atomicfile.TempName("oci")+"-*")
	if err != nil {
		if created {
			_ = os.Remove(s.w.path)
		}
		return fmt.Errorf("create temporary bundle in %s: %w", s.w.path, err)
	}
	tmp := filepath.Join(s.w.path, tmpRel)
	defer func() {
		if rerr := beneath.RemoveAll(s.w.path, tmpRel); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary bundle %s: %w", tmp, rerr)
		}
		if err != nil && created {
			_ = os.Remove(s.w.path) // only if still empty
		}
	}()
	if err := beneath.Chmod(s.w.path, tmpRel, umask.Dir()); err != nil { // MkdirTemp makes it 0700
		return fmt.Errorf("create temporary bundle in %s: %w", s.w.path, err)
	}
	// The bundle is built under a fresh name, whose path holds no symlink.
	tree, err := extract.New(filepath.Join(tmp, bundle.RootFS), extract.Options{SameOwner: s.w.opts.SameOwner})
	if err != nil {
		return err
	}
	defer tree.Close()

	var (
		config  []byte
		haveCfg bool
		// The engine hands an Ordered sink its layers in order; held is
		// what a direct caller sends early.
		held stage.Ordered[stage.Item]
	)
	defer held.Drain(func(it stage.Item) { _ = it.Release() })
	for {
		it, ok, rerr := stage.Recv(ctx, in)
		if rerr != nil {
			return rerr
		}
		if !ok {
			break
		}
		switch it.Kind {
		case stage.KindConfig:
			if haveCfg {
				return fmt.Errorf("image %s: %w %q", s.img, stage.ErrSecondConfig, it.Name)
			}
			config, haveCfg = it.Data, true
		case stage.KindLayer:
			if it.Skipped() {
				return fmt.Errorf("image %s: layer %d (%s) has no content: %w", s.img, it.Seq, it.Name, ErrMissingLayer)
			}
			if err := held.Put(it.Seq, it); err != nil {
				_ = it.Release()
				return fmt.Errorf("image %s: layer %s: %w", s.img, it.Name, err)
			}
			for {
				it, ok := held.Pop()
				if !ok {
					break
				}
				err := s.apply(ctx, tree, it)
				if rerr := it.Release(); rerr != nil && err == nil {
					err = fmt.Errorf("release layer %s: %w", it.Name, rerr)
				}
				if err != nil {
					return err
				}
			}
		default:
			_ = it.Release()
		}
	}
	if held.Held() > 0 {
		return fmt.Errorf("image %s: layer %d never arrived (%d later layers did): %w", s.img, held.Next(), held.Held(), ErrMissingLayer)
	}
	if !haveCfg {
		return fmt.Errorf("image %s: %w", s.img, ErrNoConfig)
	}
	if err := tree.Close(); err != nil {
		return fmt.Errorf("image %s: rootfs: %w", s.img, err)
	}
	if err := bundle.Write(tmp, config); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.install(tmpRel); err != nil {
		return fmt.Errorf("image %s: %w", s.img, err)
	}
	log.Debug().Int("layers", held.Next()).Str("bundle", s.w.path).Msg("Bundle written")
	return nil
}

func (s *imageSink) apply(ctx context.Context, tree *extract.Tree, it stage.Item) error {
	rc, err := it.Body.Open()
	if err != nil {
		return fmt.Errorf("image %s: open layer %s: %w", s.img, it.Name, err)
	}
	if err := tree.Apply(ctx, rc); err != nil {
		rc.Close()
		return fmt.Errorf("image %s: rootfs: layer %s: %w", s.img, it.Name, err)
	}
	// A source that verifies a layer's content (against its DiffID) reports
	// a mismatch found after the tar's end on Close.
	if err := rc.Close(); err != nil {
		return fmt.Errorf("image %s: rootfs: layer %s: %w", s.img, it.Name, err)
	}
	return nil
}

// install moves the finished bundle in tmp (relative to the bundle
// directory) into place: rootfs first (an older one is moved aside, then
// removed), then the config files. No symlink is followed.
func (s *imageSink) install(tmp string) error {
	root := s.w.path
	final := filepath.Join(root, bundle.RootFS)
	old := ""
	if _, err := beneath.Lstat(root, bundle.RootFS); err == nil {
		old = tmp + "/old-" + bundle.RootFS
		if err := beneath.Rename(root, bundle.RootFS, old); err != nil {
			return fmt.Errorf("move old rootfs %s aside: %w", final, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rootfs %s: %w", final, err)
	}
	if err := beneath.Rename(root, tmp+"/"+bundle.RootFS, bundle.RootFS); err != nil {
		if old != "" {
			_ = beneath.Rename(root, old, bundle.RootFS)
		}
		return fmt.Errorf("move rootfs into %s: %w", final, err)
	}
	for _, n := range []string{bundle.ContainerConfig, bundle.RuntimeSpec} {
		if err := beneath.Rename(root, tmp+"/"+n, n); err != nil {
			return fmt.Errorf("move %s into %s: %w", n, root, err)
		}
	}
	return nil
}

// mkdirOwn creates dir (and its parents) and reports whether dir itself was
// created by this call.
func mkdirOwn(dir string) (bool, error) {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("%s is not a directory", dir)
		}
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o777); err != nil {
		return false, err
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Verify checks the bundle written for img: rootfs is a directory,
// container-config.json is there and config.json is a runtime spec whose
// root is rootfs. It returns the problems found and an error only when it
// could not check.
func (w *Writer) Verify(ctx context.Context, img stage.Image, full bool) ([]string, error) {
	return bundle.Verify(w.path), nil
}
