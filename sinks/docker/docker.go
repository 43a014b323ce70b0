package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/sinks/internal/gate"
	tarballsink "github.com/occystrap/occystrap/sinks/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// Options tune an Output.
type Options struct {
	// TempDir holds the spool file of a layer whose size is not known
	// before it is read.
	TempDir string
}

// Output is a docker:// destination. Create it with New.
type Output struct {
	c    *dockerclient.Client
	dest stage.Image
	opts Options

	gate   gate.Gate
	mu     sync.Mutex
	config digest.Digest // of the config loaded
}

// New returns the output that loads an image tagged dest into the engine c
// talks to.
func New(c *dockerclient.Client, dest stage.Image, opts Options) *Output {
	return &Output{c: c, dest: dest, opts: opts}
}

// Ref is the destination's IMAGE:TAG.
func (o *Output) Ref() string { return o.dest.Name + ":" + o.dest.Tag }

// Sink returns the sink that loads img under the destination's name.
func (o *Output) Sink(img stage.Image) (stage.Sink, error) {
	closed, again := o.gate.Enter(true)
	if closed {
		return nil, ErrClosed
	}
	if again {
		return nil, fmt.Errorf("%s for %s: %w", o.Ref(), img, ErrOneImage)
	}
	return &imageSink{o: o, img: img}, nil
}

// Close ends the output. It is safe to call more than once.
func (o *Output) Close() error {
	o.gate.Close()
	return nil
}

type imageSink struct {
	o   *Output
	img stage.Image
}

// Properties: layers in order (the archive holds them in order).
func (s *imageSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Name: "docker", Ordered: true}
}

// Consume streams the archive into the engine's load request.
func (s *imageSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	ref := s.o.Ref()
	log := zerolog.Ctx(ctx).With().Str("image", ref).Str("sink", "docker").Logger()
	pr, pw := io.Pipe()
	var res tarballsink.Written
	var loaded []string
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError()
	p.Go(func(ctx context.Context) error {
		var err error
		res, err = tarballsink.Stream(ctx, pw, in, tarballsink.StreamOptions{Image: s.o.dest, RepoTag: ref, TempDir: s.o.opts.TempDir})
		if err != nil {
			// The load request sees a failed body and ends; the error
			// reported is this one.
			pw.CloseWithError(err)
			return err
		}
		return pw.Close()
	})
	p.Go(func(ctx context.Context) error {
		var err error
		loaded, err = s.o.c.Load(ctx, pr)
		// Unblock the writer if the engine stopped reading early.
		if err != nil {
			pr.CloseWithError(err)
			return fmt.Errorf("load %s into docker at %s: %w", ref, s.o.c.Socket(), err)
		}
		pr.CloseWithError(errLoadEnded)
		return nil
	})
	if err := p.Wait(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The run was cancelled: a failure here (the HTTP client
			// closing the request body, so the archive writer finds its
			// pipe closed) follows from it and is not the run's error.
			return cerr
		}
		return err
	}
	s.o.mu.Lock()
	s.o.config = res.ConfigDigest
	s.o.mu.Unlock()
	log.Debug().Strs("engine", loaded).Int("layers", len(res.Layers)).Int64("bytes", res.Bytes).Msg("Image loaded")
	return nil
}

// errLoadEnded closes the pipe's reading end after the engine answered:
// a write after it is a bug in the archive writer.
var errLoadEnded = errors.New("docker load request already ended")

// Verify checks the image loaded for img: IMAGE:TAG exists and its Id is the
// sha256 of the config that was loaded. A failure to reach the engine is an
// error (the caller warns), not a problem.
func (o *Output) Verify(ctx context.Context, _ stage.Image, _ bool) ([]string, error) {
	ref := o.Ref()
	o.mu.Lock()
	want := o.config
	o.mu.Unlock()
	info, err := o.c.Inspect(ctx, ref)
	if errors.Is(err, dockerclient.ErrNotFound) {
		return []string{fmt.Sprintf("Image %s not found in Docker after load", ref)}, nil
	}
	if err != nil {
		//lint:ignore ST1005 the original occystrap's warning starts "Cannot connect"
		return nil, fmt.Errorf("Cannot connect to Docker to verify %s: %w", ref, err)
	}
	if want != "" && info.ID != want {
		return []string{fmt.Sprintf("Image %s ID mismatch: expected %s, got %s", ref, want, info.ID)}, nil
	}
	return nil, nil
}
