package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// Output is a registry:// destination: it makes one Sink per image, and
// shares the layer cache and the set of pushed blobs (for mounts) between
// them. It is safe for concurrent use.
type Output struct {
	t    *transport.Transport
	opts Options

	mu      sync.Mutex
	configs map[stage.Image]digest.Digest   // config pushed, per image
	blobs   map[stage.Image][]digest.Digest // config and layers pushed, per image
	early   map[digest.Digest]*headAhead    // HeadAhead's HEADs, for the sinks
	put     map[digest.Digest]int64         // blobs HeadAhead put there: the size copied, or -1 mounted
}

// NewOutput opens the destination. opts.Cache and opts.Pushed are shared by
// every sink it makes (Pushed is made when nil).
func NewOutput(t *transport.Transport, opts Options) *Output {
	if opts.Pushed == nil {
		opts.Pushed = NewPushed()
	}
	return &Output{t: t, opts: opts, configs: map[stage.Image]digest.Digest{}, blobs: map[stage.Image][]digest.Digest{}, early: map[digest.Digest]*headAhead{}, put: map[digest.Digest]int64{}}
}

// Sink gives the sink of one image: the destination's repository and tag.
func (o *Output) Sink(img stage.Image) (stage.Sink, error) {
	s := New(o.t, o.opts)
	o.mu.Lock()
	s.early = maps.Clone(o.early)
	o.mu.Unlock()
	s.putAhead = o.putAhead
	s.pushed = func(cfg digest.Digest, blobs []digest.Digest) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.configs[img] = cfg
		o.blobs[img] = blobs
	}
	return s, nil
}

// ForRef gives an output that pushes to the same repository under ref (a
// tag, or a digest for the children of an index), sharing the layer cache
// and the record of pushed blobs. Closing it is not needed: the cache is
// saved by the output it came from.
func (o *Output) ForRef(ref string) *Output {
	opts := o.opts
	opts.Tag = ref
	return &Output{t: o.t, opts: opts, configs: map[stage.Image]digest.Digest{}, blobs: map[stage.Image][]digest.Digest{}, early: map[digest.Digest]*headAhead{}, put: map[digest.Digest]int64{}}
}

// PutManifest pushes body (a manifest list or index, as fetched, so that
// its digest is kept) under the output's tag.
func (o *Output) PutManifest(ctx context.Context, mediaType string, body []byte) (digest.Digest, error) {
	return o.t.Registry(o.opts.Host, o.opts.Registry).PutManifest(ctx, o.opts.Repo, o.opts.Tag, mediaType, body)
}

// Manifest fetches what the output's tag names now (for verifying a copied
// index).
func (o *Output) Manifest(ctx context.Context, accept []string) (transport.Manifest, error) {
	return o.t.Registry(o.opts.Host, o.opts.Registry).GetManifest(ctx, o.opts.Repo, o.opts.Tag, accept)
}

// Close saves the layer cache, if any.
func (o *Output) Close() error {
	if o.opts.Cache != nil {
		return o.opts.Cache.Save()
	}
	return nil
}

// Verify is the original's registry verify: GET the manifest, HEAD the
// config and every layer. It returns the problems found; network failures
// are an error (the caller warns "Verification failed"). The blobs this
// run pushed for img are HEADed while the manifest is fetched (one round
// trip for both); a blob of the manifest not among them is HEADed after.
func (o *Output) Verify(ctx context.Context, img stage.Image, _ bool) ([]string, error) {
	reg := o.t.Registry(o.opts.Host, o.opts.Registry)
	o.mu.Lock()
	want, ok := o.configs[img]
	pushed := o.blobs[img]
	o.mu.Unlock()

	// Up to 16 HEADs (or 2×Workers) at once.
	p := pool.New().WithContext(ctx).WithFirstError().WithMaxGoroutines(max(2*o.opts.Workers, 16))
	var mu sync.Mutex
	found := map[digest.Digest]bool{}
	head := func(d digest.Digest) {
		p.Go(func(ctx context.Context) error {
			there, _, err := reg.BlobExists(ctx, o.opts.Repo, d)
			mu.Lock()
			found[d] = there
			mu.Unlock()
			return err
		})
	}
	headed := map[digest.Digest]bool{}
	for _, d := range pushed {
		if !headed[d] {
			headed[d] = true
			head(d)
		}
	}
	m, err := reg.GetManifest(ctx, o.opts.Repo, o.opts.Tag, []string{mediatype.DockerManifest, v1.MediaTypeImageManifest})
	var problems []string
	var blobs []v1.Descriptor
	switch {
	case errors.Is(err, transport.ErrNotFound):
		problems = []string{"Manifest not found"}
	case err != nil:
	default:
		var man v1.Manifest
		if uerr := json.Unmarshal(m.Body, &man); uerr != nil {
			problems = []string{fmt.Sprintf("Manifest not found (unparseable: %v)", uerr)}
			break
		}
		if ok && man.Config.Digest != want {
			problems = append(problems, fmt.Sprintf("config digest mismatch: manifest has %s, pushed %s", man.Config.Digest, want))
		}
		blobs = append([]v1.Descriptor{man.Config}, man.Layers...)
		for _, d := range blobs {
			if !headed[d.Digest] {
				headed[d.Digest] = true
				head(d.Digest)
			}
		}
	}
	perr := p.Wait()
	if err != nil && !errors.Is(err, transport.ErrNotFound) {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	for _, d := range blobs { // the manifest's order
		if !found[d.Digest] {
			problems = append(problems, "Layer blob not found: "+d.Digest.String())
		}
	}
	if len(problems) == 0 {
		zerolog.Ctx(ctx).Info().Str("image", o.opts.Host+"/"+o.opts.Repo+":"+o.opts.Tag).Msg("Registry image verified")
	}
	return problems, nil
}

// compile-time checks
var (
	_ stage.Sink     = (*Sink)(nil)
	_ stage.Output   = (*Output)(nil)
	_ stage.Verifier = (*Output)(nil)
)
