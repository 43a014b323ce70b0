package tarball

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/stage"
)

const (
	blockSize  = 512
	recordSize = 20 * blockSize // Python tarfile's RECORDSIZE
)

// Options tune a Writer.
type Options struct {
	// TempDir holds the spool file of a layer whose size is not known before
	// it is read. Default: the system's temporary directory.
	TempDir string
}

// Writer is a tar:// destination. Create it with New.
type Writer struct {
	path string
	opts Options

	mu     sync.Mutex
	used   bool
	closed bool
}

// New returns the writer of the archive at path. Its directory must exist.
func New(path string, opts Options) (*Writer, error) {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("tar output %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("tar output %s: %s is not a directory", path, dir)
	}
	return &Writer{path: path, opts: opts}, nil
}

// Sink returns the sink that writes img. Only one image per Writer.
func (w *Writer) Sink(img stage.Image) (stage.Sink, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if w.used {
		return nil, fmt.Errorf("%s for %s: %w", w.path, img, ErrOneImage)
	}
	w.used = true
	return &imageSink{w: w, img: img}, nil
}

// Close ends the output. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

type imageSink struct {
	w   *Writer
	img stage.Image
}

// Name is the sink's name in the statistics.
func (s *imageSink) Name() string { return "tar" }

// NeedsOrder is true: layers are streamed into the archive in Seq order.
func (s *imageSink) NeedsOrder() bool { return true }

// Consume writes the archive and renames it into place when in is closed.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) (err error) {
	log := zerolog.Ctx(ctx).With().Str("image", s.img.String()).Str("sink", "tar").Logger()
	f, err := os.CreateTemp(filepath.Dir(s.w.path), atomicfile.TempPrefix+filepath.Base(s.w.path)+"-*")
	if err != nil {
		return fmt.Errorf("create temporary archive for %s: %w", s.w.path, err)
	}
	tmp := f.Name()
	var held []stage.Item
	defer func() {
		for _, it := range held {
			_ = it.Release()
		}
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	a := &archive{f: f, tempDir: s.w.opts.TempDir}
	var (
		config     string
		haveConfig bool
		layers     []string
		next       int
	)
	addLayer := func(it stage.Item) error {
		if it.Seq != next {
			_ = it.Release()
			return fmt.Errorf("image %s: layer %d (%s) arrived when layer %d was expected", s.img, it.Seq, it.Name, next)
		}
		next++
		member := it.Name + "/layer.tar"
		if err := a.addLayer(ctx, member, it); err != nil {
			return fmt.Errorf("image %s: %w", s.img, err)
		}
		layers = append(layers, member)
		return nil
	}
loop:
	for {
		it, ok, err := stage.Recv(ctx, in)
		if err != nil {
			return err
		}
		if !ok {
			break loop
		}
		switch it.Kind {
		case stage.KindConfig:
			if haveConfig {
				return fmt.Errorf("image %s: second config %q after %q", s.img, it.Name, config)
			}
			if err := a.addBytes(it.Name, it.Data); err != nil {
				return fmt.Errorf("image %s: config: %w", s.img, err)
			}
			config, haveConfig = it.Name, true
			for len(held) > 0 {
				h := held[0]
				held = held[1:]
				if err := addLayer(h); err != nil {
					return err
				}
			}
		case stage.KindLayer:
			if it.Skipped() {
				return fmt.Errorf("image %s: layer %d (%s): %w", s.img, it.Seq, it.Name, ErrSkippedLayer)
			}
			if !haveConfig {
				held = append(held, it)
				continue
			}
			if err := addLayer(it); err != nil {
				return err
			}
		default:
			_ = it.Release()
		}
	}
	if !haveConfig {
		return fmt.Errorf("image %s: %w", s.img, ErrNoConfig)
	}
	if err := a.addBytes("manifest.json", manifestJSON(s.img, config, layers)); err != nil {
		return fmt.Errorf("image %s: manifest.json: %w", s.img, err)
	}
	if err := a.finish(); err != nil {
		return fmt.Errorf("image %s: finish archive: %w", s.img, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image %s: close archive: %w", s.img, err)
	}
	if err := os.Rename(tmp, s.w.path); err != nil {
		return fmt.Errorf("image %s: rename archive into %s: %w", s.img, s.w.path, err)
	}
	log.Debug().Int("layers", len(layers)).Int64("bytes", a.off).Msg("Archive written")
	return nil
}

// manifestJSON is the original's manifest.json, byte for byte:
// json.dumps([{"Layers": ..., "RepoTags": ..., "Config": ...}]).
func manifestJSON(img stage.Image, config string, layers []string) []byte {
	var b bytes.Buffer
	b.WriteString(`[{"Layers": [`)
	for i, l := range layers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(pyjson.String(l))
	}
	b.WriteString(`], "RepoTags": [`)
	b.Write(pyjson.String(path.Base(img.Name) + ":" + img.Tag))
	b.WriteString(`], "Config": `)
	b.Write(pyjson.String(config))
	b.WriteString(`}]`)
	return b.Bytes()
}

// archive writes tar members straight to a file: headers are built with
// archive/tar, contents are copied to the file directly (so that a file body
// is copied by the kernel).
type archive struct {
	f       *os.File
	off     int64
	tempDir string
}

var zeros [2 * recordSize]byte

func (a *archive) header(name string, size int64) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(hdr); err != nil {
		// A name USTAR cannot hold: PAX, as Python would fall back to GNU.
		buf.Reset()
		hdr.Format = tar.FormatPAX
		tw = tar.NewWriter(&buf)
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header for %s: %w", name, err)
		}
	}
	n, err := a.f.Write(buf.Bytes())
	a.off += int64(n)
	return err
}

func (a *archive) pad() error {
	if r := a.off % blockSize; r != 0 {
		n, err := a.f.Write(zeros[:blockSize-r])
		a.off += int64(n)
		return err
	}
	return nil
}

func (a *archive) addBytes(name string, data []byte) error {
	if err := a.header(name, int64(len(data))); err != nil {
		return err
	}
	n, err := a.f.Write(data)
	a.off += int64(n)
	if err != nil {
		return err
	}
	return a.pad()
}

// addLayer writes the layer's body as member name and releases it.
func (a *archive) addLayer(ctx context.Context, name string, it stage.Item) (err error) {
	defer func() {
		if rerr := it.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("release layer %s: %w", it.Name, rerr)
		}
	}()
	size := it.Size
	var open func() (io.ReadCloser, error) = it.Body.Open
	if size < 0 {
		if fb, ok := it.Body.(*stage.FileBody); ok {
			fi, err := os.Stat(fb.Path)
			if err != nil {
				return fmt.Errorf("layer %s: %w", it.Name, err)
			}
			size = fi.Size()
		} else {
			spool, n, err := a.spool(ctx, it)
			if err != nil {
				return err
			}
			defer os.Remove(spool)
			size = n
			open = func() (io.ReadCloser, error) { return os.Open(spool) }
		}
	}
	rc, err := open()
	if err != nil {
		return fmt.Errorf("open layer %s: %w", it.Name, err)
	}
	defer rc.Close()
	if err := a.header(name, size); err != nil {
		return err
	}
	n, err := atomicfile.Copy(ctx, a.f, rc)
	a.off += n
	if err != nil {
		return fmt.Errorf("copy layer %s: %w", it.Name, err)
	}
	if n != size {
		return fmt.Errorf("layer %s: body has %d bytes, expected %d", it.Name, n, size)
	}
	return a.pad()
}

// spool copies a streamed body of unknown size to a temporary file.
func (a *archive) spool(ctx context.Context, it stage.Item) (string, int64, error) {
	rc, err := it.Body.Open()
	if err != nil {
		return "", 0, fmt.Errorf("open layer %s: %w", it.Name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(a.tempDir, "occystrap-layer-*.tar")
	if err != nil {
		return "", 0, fmt.Errorf("spool layer %s: %w", it.Name, err)
	}
	n, err := atomicfile.Copy(ctx, f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", 0, fmt.Errorf("spool layer %s: %w", it.Name, err)
	}
	return f.Name(), n, nil
}

// finish writes the two zero blocks that end a tar and pads the archive to
// a whole record, as Python's tarfile does.
func (a *archive) finish() error {
	end := int64(2 * blockSize)
	if r := (a.off + end) % recordSize; r != 0 {
		end += recordSize - r
	}
	n, err := a.f.Write(zeros[:end])
	a.off += int64(n)
	return err
}
