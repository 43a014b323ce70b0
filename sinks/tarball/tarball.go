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
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/internal/umask"
	"github.com/occystrap/occystrap/sinks/internal/atomicfile"
	"github.com/occystrap/occystrap/sinks/internal/gate"
	"github.com/occystrap/occystrap/sinks/internal/names"
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

	gate gate.Gate
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
	// What a killed run left beside the archive goes now (best effort: a
	// temporary that cannot be removed is only in the way of no one).
	_, _ = beneath.RemoveMatching(dir, ".", 0, tempname.Stale, nil)
	return &Writer{path: path, opts: opts}, nil
}

// Sink returns the sink that writes img. Only one image per Writer.
func (w *Writer) Sink(img stage.Image) (stage.Sink, error) {
	closed, again := w.gate.Enter(true)
	if closed {
		return nil, ErrClosed
	}
	if again {
		return nil, fmt.Errorf("%s for %s: %w", w.path, img, ErrOneImage)
	}
	return &imageSink{w: w, img: img}, nil
}

// Close ends the output. It is safe to call more than once.
func (w *Writer) Close() error {
	w.gate.Close()
	return nil
}

type imageSink struct {
	w   *Writer
	img stage.Image
}

// Properties: layers in order (they are streamed into the archive in Seq
// order).
func (s *imageSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "tar", Ordered: true}
}

// Consume writes the archive and renames it into place when in is closed.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) (err error) {
	log := zerolog.Ctx(ctx).With().Str("image", s.img.String()).Str("sink", "tar").Logger()
	f, err := os.CreateTemp(filepath.Dir(s.w.path), atomicfile.TempName(filepath.Base(s.w.path))+"-*")
	if err != nil {
		return fmt.Errorf("create temporary archive for %s: %w", s.w.path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	res, err := Stream(ctx, f, in, StreamOptions{Image: s.img, RepoTag: tarRepoTag(s.img), TempDir: s.w.opts.TempDir})
	if err != nil {
		return err
	}
	// The temporary file is 0600; the archive gets the mode a plain create
	// gives, as the original's open(path, "wb").
	if err := f.Chmod(umask.File()); err != nil {
		return fmt.Errorf("image %s: archive mode: %w", s.img, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("image %s: close archive: %w", s.img, err)
	}
	if err := os.Rename(tmp, s.w.path); err != nil {
		return fmt.Errorf("image %s: rename archive into %s: %w", s.img, s.w.path, err)
	}
	log.Debug().Int("layers", len(res.Layers)).Int64("bytes", res.Bytes).Msg("Archive written")
	return nil
}

// tarRepoTag is the original's RepoTags entry: the image name's last path
// part and the tag.
func tarRepoTag(img stage.Image) string { return path.Base(img.Name) + ":" + img.Tag }

// StreamOptions tune Stream.
type StreamOptions struct {
	// Image names the image in errors.
	Image stage.Image
	// RepoTag is manifest.json's one RepoTags entry, as it is (tar:// gives
	// the last part of the image name and the tag; docker:// the full name,
	// which `docker load` tags the image with).
	RepoTag string
	// TempDir holds the spool file of a layer whose size is not known before
	// it is read.
	TempDir string
}

// Written describes an archive Stream wrote.
type Written struct {
	Config       string        // the config's member name
	ConfigDigest digest.Digest // the sha256 of its bytes
	Layers       []string      // the layer members, in order
	Bytes        int64         // the archive's size
}

// Stream writes the archive of the items received on in to w, in order and
// in one pass, so that w may be a pipe (docker:// streams it into the
// engine's load request). Layers must arrive in Seq order (the sink's
// Ordered); those that arrive before the config are held, not copied. A
// copy into an *os.File from a file-backed body is done by the kernel. On
// error, Stream releases what it holds and returns without draining in.
func Stream(ctx context.Context, w io.Writer, in <-chan stage.Item, o StreamOptions) (Written, error) {
	var (
		held []stage.Item
		res  Written
	)
	defer func() {
		for _, it := range held {
			_ = it.Release()
		}
	}()
	img := o.Image
	a := &archive{w: w, tempDir: o.TempDir}
	haveConfig := false
	next := 0
	addLayer := func(it stage.Item) error {
		if it.Seq != next {
			_ = it.Release()
			return fmt.Errorf("image %s: layer %d (%s) arrived when layer %d was expected", img, it.Seq, it.Name, next)
		}
		next++
		if err := names.Layer(it.Name, names.Archive); err != nil {
			_ = it.Release()
			return fmt.Errorf("image %s: %w", img, err)
		}
		member := it.Name + "/" + names.LayerFile
		if err := a.addLayer(ctx, member, it); err != nil {
			return fmt.Errorf("image %s: %w", img, err)
		}
		res.Layers = append(res.Layers, member)
		return nil
	}
	for {
		it, ok, err := stage.Recv(ctx, in)
		if err != nil {
			return res, err
		}
		if !ok {
			break
		}
		switch it.Kind {
		case stage.KindConfig:
			if haveConfig {
				return res, fmt.Errorf("image %s: %w %q after %q", img, stage.ErrSecondConfig, it.Name, res.Config)
			}
			if err := names.Config(it.Name, names.Archive); err != nil {
				return res, fmt.Errorf("image %s: %w", img, err)
			}
			if err := a.addBytes(it.Name, it.Data); err != nil {
				return res, fmt.Errorf("image %s: config: %w", img, err)
			}
			res.Config, res.ConfigDigest, haveConfig = it.Name, digest.FromBytes(it.Data), true
			for len(held) > 0 {
				h := held[0]
				held = held[1:]
				if err := addLayer(h); err != nil {
					return res, err
				}
			}
		case stage.KindLayer:
			if it.Skipped() {
				return res, fmt.Errorf("image %s: layer %d (%s): %w", img, it.Seq, it.Name, ErrSkippedLayer)
			}
			if !haveConfig {
				held = append(held, it)
				continue
			}
			if err := addLayer(it); err != nil {
				return res, err
			}
		default:
			_ = it.Release()
		}
	}
	if !haveConfig {
		return res, fmt.Errorf("image %s: %w", img, ErrNoConfig)
	}
	if err := a.addBytes("manifest.json", manifestJSON(o.RepoTag, res.Config, res.Layers)); err != nil {
		return res, fmt.Errorf("image %s: manifest.json: %w", img, err)
	}
	if err := a.finish(); err != nil {
		return res, fmt.Errorf("image %s: finish archive: %w", img, err)
	}
	res.Bytes = a.off
	return res, nil
}

// manifestJSON is the original's manifest.json, byte for byte:
// json.dumps([{"Layers": ..., "RepoTags": ..., "Config": ...}]).
func manifestJSON(repoTag, config string, layers []string) []byte {
	var b bytes.Buffer
	b.WriteString(`[{"Layers": [`)
	for i, l := range layers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(pyjson.String(l))
	}
	b.WriteString(`], "RepoTags": [`)
	b.Write(pyjson.String(repoTag))
	b.WriteString(`], "Config": `)
	b.Write(pyjson.String(config))
	b.WriteString(`}]`)
	return b.Bytes()
}

// archive writes tar members straight to w: headers are built with
// archive/tar, contents are copied to w directly (so that a file body is
// copied into a file by the kernel).
type archive struct {
	w       io.Writer
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
	n, err := a.w.Write(buf.Bytes())
	a.off += int64(n)
	return err
}

func (a *archive) pad() error {
	if r := a.off % blockSize; r != 0 {
		n, err := a.w.Write(zeros[:blockSize-r])
		a.off += int64(n)
		return err
	}
	return nil
}

func (a *archive) addBytes(name string, data []byte) error {
	if err := a.header(name, int64(len(data))); err != nil {
		return err
	}
	n, err := a.w.Write(data)
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
	n, err := a.copy(ctx, rc)
	a.off += n
	if err != nil {
		return fmt.Errorf("copy layer %s: %w", it.Name, err)
	}
	if n != size {
		return fmt.Errorf("layer %s: body has %d bytes, expected %d", it.Name, n, size)
	}
	return a.pad()
}

// copy copies a layer's content to w, checking ctx between chunks.
func (a *archive) copy(ctx context.Context, r io.Reader) (int64, error) {
	if f, ok := a.w.(*os.File); ok {
		return atomicfile.Copy(ctx, f, r)
	}
	buf := make([]byte, 1<<20)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{a.w}, io.LimitReader(r, 16<<20), buf)
		total += n
		if err != nil || n < 16<<20 {
			return total, err
		}
	}
}

// spool copies a streamed body of unknown size to a temporary file.
func (a *archive) spool(ctx context.Context, it stage.Item) (string, int64, error) {
	rc, err := it.Body.Open()
	if err != nil {
		return "", 0, fmt.Errorf("open layer %s: %w", it.Name, err)
	}
	defer rc.Close()
	f, err := tempname.Create(a.tempDir, "layer", ".tar")
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
	n, err := a.w.Write(zeros[:end])
	a.off += int64(n)
	return err
}
