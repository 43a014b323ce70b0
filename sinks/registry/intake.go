package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// Consume is the intake: it takes the image's items in, starts a push
// for each blob (the decisions are in blobs.go, the HEADs sent ahead in
// ahead.go) and, once every blob has landed, pushes the manifest
// (manifest.go).
func (s *Sink) Consume(ctx context.Context, in <-chan stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("image", s.where()).Logger()
	ctx = log.WithContext(ctx)
	start := time.Now()

	var (
		mu       sync.Mutex
		results  = map[int]layerResult{}
		config   *stage.Item
		cfgDesc  v1.Descriptor
		manifest *stage.Item
	)
	// Each blob gets a goroutine as its item comes (up to blobsInFlight;
	// a manifest naming thousands of layers waits): existence checks and
	// mounts, which move no data, run for those at once; uploads (and
	// hashing a passthrough blob whose digest is not known, a local read)
	// take one of Workers slots. The HEADs sent ahead have goroutines of
	// their own, so that they never hold back a blob's mount.
	slots := make(chan struct{}, s.opts.Workers)
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(blobsInFlight)
	heads := pool.New().WithContext(ctx).WithMaxGoroutines(requestsAhead)
	defer func() { _ = heads.Wait() }() // each HEAD returns nil; p's end does not wait for them
	// The first sink of the run to push to a host pings it, so that the
	// connection (and the token realm) is ready when the first blob is.
	if s.opts.Pushed.firstPing(s.opts.Host) {
		p.Go(func(ctx context.Context) error {
			if err := s.reg.Ping(ctx); err != nil {
				log.Debug().Err(err).Msg("Ping failed")
			}
			return nil
		})
	}
	// The first failed blob stops the intake: Consume returns its error,
	// and the engine cancels the source and releases what is in flight. A
	// cancelled ctx stops it too, without waiting for the next item.
	failed := make(chan struct{})
	var secondConfig error
	var failOnce sync.Once
	fail := func(err error) error {
		if err != nil {
			failOnce.Do(func() { close(failed) })
		}
		return err
	}
intake:
	for {
		var it stage.Item
		var ok bool
		select {
		case it, ok = <-in:
			if !ok {
				break intake
			}
		case <-failed:
			break intake
		case <-ctx.Done():
			// What is still in flight upstream is the engine's to release.
			break intake
		}
		switch it.Kind {
		case stage.KindManifest:
			m := it
			manifest = &m
			s.headAhead(ctx, heads, m.Data)
		case stage.KindConfig:
			if config != nil {
				_ = it.Release()
				secondConfig = fmt.Errorf("%s: %w %q after %q", s.where(), stage.ErrSecondConfig, it.Name, config.Name)
				p.Go(func(context.Context) error { return fail(secondConfig) }) // stops the uploads in flight
				break intake
			}
			c := it
			config = &c
			// A config that says where its blob is (a registry source in
			// passthrough) is mounted from there when that is this registry.
			from := ""
			if o, ok := c.Body.(BlobOrigin); ok {
				if host, repo := o.Origin(); host == s.opts.Host && repo != s.opts.Repo {
					from = repo
				}
			}
			_ = c.Release()
			p.Go(func(ctx context.Context) error {
				// The config is small and in memory: it takes no upload
				// slot, so that the layers get all of them.
				d, err := s.ensureBlob(ctx, v1.Descriptor{MediaType: mediatype.DockerConfig, Digest: digest.FromBytes(c.Data), Size: int64(len(c.Data))},
					bytesOpener(c.Data), from, nil)
				if err != nil {
					return fail(fmt.Errorf("config %s: %w", c.Name, err))
				}
				mu.Lock()
				cfgDesc = d
				mu.Unlock()
				return nil
			})
		case stage.KindLayer:
			p.Go(func(ctx context.Context) error {
				defer it.Release()
				r, err := s.pushLayer(ctx, it, slots)
				if err != nil {
					return fail(fmt.Errorf("layer %d (%s): %w", it.Seq, it.Name, err))
				}
				mu.Lock()
				results[it.Seq] = r
				mu.Unlock()
				return nil
			})
		default:
			_ = it.Release()
		}
	}
	if err := p.Wait(); secondConfig != nil {
		return secondConfig
	} else if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		return &uploadError{err}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if config == nil {
		return ErrNoConfig
	}

	return s.finish(ctx, config, cfgDesc, results, manifest, start)
}
