package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/tempname"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

const (
	copyBuffer = 1 << 20
	maxConfig  = 64 << 20
)

// Options tune a Source.
type Options struct {
	// TempDir holds the spool file. Default: the system's temporary
	// directory.
	TempDir string
	// Inflate gunzips compressed layers (nil: Go's).
	Inflate *inflate.Inflater
}

// Source is an image in a Docker dockerclient. See the package documentation.
type Source struct {
	c       *dockerclient.Client
	img     stage.Image
	ref     string
	id      digest.Digest
	diffIDs []digest.Digest
	opts    Options

	spool   string
	archive *tarballsrc.Source
	has     func(name string) bool
}

// Wire takes the sink's test for layers it already has (stage.Wirable):
// those are emitted with a nil Body, as the original's fetch_callback
// skips them.
func (s *Source) Wire(w stage.Wiring) { s.has = w.Has }

// Open inspects image (IMAGE[:TAG]) in the engine c talks to.
func Open(ctx context.Context, c *dockerclient.Client, image string, opts Options) (*Source, error) {
	img := dockerclient.ParseImage(image)
	ref := img.Name + ":" + img.Tag
	info, err := c.InspectImage(ctx, ref)
	if errors.Is(err, dockerclient.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	if err != nil {
		return nil, err
	}
	return &Source{c: c, img: img, ref: ref, id: info.ID, diffIDs: info.RootFS.Layers, opts: opts}, nil
}

// Image is the image the source reads.
func (s *Source) Image() stage.Image { return s.img }

// ID is the image's config digest, as the engine reports it.
func (s *Source) ID() digest.Digest { return s.id }

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "docker"}
}

// Close removes the spool file. Bodies must all be closed before.
func (s *Source) Close() error {
	var errs []error
	if s.archive != nil {
		errs = append(errs, s.archive.Close())
		s.archive = nil
	}
	if s.spool != "" {
		if err := os.Remove(s.spool); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("remove spool of %s: %w", s.ref, err))
		}
		s.spool = ""
	}
	return errors.Join(errs...)
}

// event is what the spooling reader tells the emitter.
type event struct {
	kind  int // evConfig, evLayer or evEnd
	seq   int
	name  string
	off   int64
	size  int64
	data  []byte
	layer digest.Digest
}

const (
	evConfig = iota
	evLayer
	evEnd
)

// Emit streams the image out of the dockerclient. See the package documentation.
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) error {
	if s.spool != "" {
		return fmt.Errorf("docker image %s: Emit called twice", s.ref)
	}
	f, err := tempname.Create(s.opts.TempDir, "docker", ".tar")
	if err != nil {
		return fmt.Errorf("spool docker image %s: %w", s.ref, err)
	}
	s.spool = f.Name()
	rc, err := s.c.Save(ctx, s.ref)
	if err != nil {
		f.Close()
		return err
	}
	events := make(chan event, len(s.diffIDs)+2)
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	p.Go(func(ctx context.Context) error {
		defer close(events)
		defer rc.Close()
		err := s.read(ctx, rc, f, events)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("spool docker image %s: %w", s.ref, cerr)
		}
		if err != nil {
			return err
		}
		select {
		case events <- event{kind: evEnd}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	p.Go(func(ctx context.Context) error { return s.emit(ctx, events, out) })
	return p.Wait()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// read copies the archive from rc into f, and tells events about the
// config and each layer it can place (see the package documentation).
func (s *Source) read(ctx context.Context, rc io.Reader, f *os.File, events chan<- event) error {
	log := zerolog.Ctx(ctx)
	seqOf := map[digest.Digest]int{}
	for i, d := range s.diffIDs {
		if _, dup := seqOf[d]; dup {
			seqOf[d] = -1
			continue
		}
		seqOf[d] = i
	}
	configNames := map[string]bool{s.id.Encoded() + ".json": true, "blobs/sha256/" + s.id.Encoded(): true}
	what := "stream docker image " + s.ref
	cr := &countingReader{r: io.TeeReader(rc, f)}
	tr := tar.NewReader(cr)
	buf := make([]byte, copyBuffer)
	send := func(ev event) error {
		select {
		case events <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: after %d bytes: %w", what, cr.n, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean("/" + h.Name)[1:]
		off := cr.n
		switch {
		case configNames[name] && h.Size <= maxConfig:
			data := make([]byte, h.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return fmt.Errorf("%s: member %s: %w", what, name, err)
			}
			if digest.FromBytes(data) != s.id {
				return fmt.Errorf("%s: member %s: %w: its sha256 is not the image Id %s", what, name, ErrArchive, s.id)
			}
			if err := send(event{kind: evConfig, name: name, data: data}); err != nil {
				return err
			}
		case strings.HasSuffix(name, "/layer.tar") || strings.HasPrefix(name, "blobs/sha256/"):
			hs := sha256.New()
			n, err := io.CopyBuffer(hs, tr, buf)
			if err != nil {
				return fmt.Errorf("%s: member %s: %w", what, name, err)
			}
			d := digest.NewDigest(digest.SHA256, hs)
			seq, ok := seqOf[d]
			if !ok || seq < 0 {
				continue
			}
			ln := path.Base(name)
			if strings.HasSuffix(name, "/layer.tar") {
				ln = path.Dir(name)
			}
			log.Debug().Str("member", name).Int("seq", seq).Int64("bytes", n).Msg("Layer spooled")
			if err := send(event{kind: evLayer, seq: seq, name: ln, off: off, size: n, layer: d}); err != nil {
				return err
			}
		}
	}
	// The end blocks and padding, so that the spool is the whole archive.
	if _, err := io.CopyBuffer(io.Discard, cr, buf); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// emit sends the config and the layers in Seq order as events place them,
// then the rest from the finished spool.
func (s *Source) emit(ctx context.Context, events <-chan event, out chan<- stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.ref).Logger()
	var (
		config string
		order  stage.Ordered[event] // layers spooled until the ones before them are
		names  []string             // names of the layers emitted early
	)
	for {
		var ev event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil // the reader failed; its error is the run's
		}
		switch ev.kind {
		case evConfig:
			config = ev.name
			it := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: ev.name, Size: int64(len(ev.data)), Data: ev.data}
			if err := stage.Send(ctx, out, it); err != nil {
				return err
			}
		case evLayer:
			if err := order.Put(ev.seq, ev); errors.Is(err, stage.ErrDuplicate) {
				continue // the same layer twice in the archive: the first stands
			} else if err != nil {
				return fmt.Errorf("docker image %s: %w", s.ref, err)
			}
			for {
				r, ok := order.Pop()
				if !ok {
					break
				}
				it := stage.Item{Seq: r.seq, Kind: stage.KindLayer, Name: r.name, DiffID: r.layer, Size: r.size,
					Body: &stage.OpenerBody{OpenFunc: s.opener(r)}}
				if s.has != nil && s.has(r.name) {
					it.Body, it.Size = nil, -1
				}
				if err := stage.Send(ctx, out, it); err != nil {
					return err
				}
				names = append(names, r.name)
			}
		case evEnd:
			log.Debug().Int("early_layers", order.Next()).Int("layers", len(s.diffIDs)).Msg("Image spooled")
			return s.tail(ctx, config, names, out)
		}
	}
}

// tail indexes the finished spool and emits what emit could not.
func (s *Source) tail(ctx context.Context, config string, early []string, out chan<- stage.Item) error {
	a, err := tarballsrc.OpenWith(s.spool, tarballsrc.Options{Inflate: s.opts.Inflate})
	if err != nil {
		return fmt.Errorf("docker image %s: %w", s.ref, err)
	}
	s.archive = a
	a.Wire(stage.Wiring{Has: s.has})
	items := make(chan stage.Item)
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	p.Go(func(ctx context.Context) error {
		defer close(items)
		return a.Emit(ctx, items)
	})
	p.Go(func(ctx context.Context) error {
		for it := range items {
			switch {
			case it.Kind == stage.KindConfig && config != "":
				_ = it.Release()
				if it.Name != config {
					return fmt.Errorf("docker image %s: %w: manifest.json names config %s, the image Id is in %s", s.ref, ErrArchive, it.Name, config)
				}
				continue
			case it.Kind == stage.KindLayer && it.Seq < len(early):
				_ = it.Release()
				if it.Name != early[it.Seq] {
					return fmt.Errorf("docker image %s: %w: manifest.json puts layer %s at %d, its DiffID put %s there", s.ref, ErrArchive, it.Name, it.Seq, early[it.Seq])
				}
				continue
			case it.Kind == stage.KindLayer && it.DiffID == "" && it.Seq < len(s.diffIDs):
				// The config gave no DiffIDs the archive indexer accepted;
				// the inspect's are the engine's own.
				it.DiffID = s.diffIDs[it.Seq]
			}
			if err := stage.Send(ctx, out, it); err != nil {
				return err
			}
		}
		return nil
	})
	if err := p.Wait(); err != nil {
		return err
	}
	return nil
}

// opener opens a layer's section of the spool file.
func (s *Source) opener(ev event) func() (io.ReadCloser, error) {
	spool := s.spool
	return func() (io.ReadCloser, error) {
		f, err := os.Open(spool)
		if err != nil {
			return nil, fmt.Errorf("open layer %s of %s: %w", ev.name, s.ref, err)
		}
		if _, err := f.Seek(ev.off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open layer %s of %s: %w", ev.name, s.ref, err)
		}
		return &section{f: f, lr: io.LimitedReader{R: f, N: ev.size}}, nil
	}
}

// section reads one member of the spool from its own descriptor.
type section struct {
	f  *os.File
	lr io.LimitedReader
}

func (s *section) Read(p []byte) (int, error) { return s.lr.Read(p) }

// WriteTo lets a copy into a file use copy_file_range.
func (s *section) WriteTo(w io.Writer) (int64, error) {
	if f, ok := w.(*os.File); ok {
		return f.ReadFrom(&s.lr)
	}
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{&s.lr}, make([]byte, copyBuffer))
}

func (s *section) Close() error { return s.f.Close() }
