package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// Output is a registry:// destination: it makes one Sink per image, and
// shares the layer cache and the set of pushed blobs (for mounts) between
// them. It is safe for concurrent use.
type Output struct {
	t    *transport.Transport
	opts Options

	mu      sync.Mutex
	configs map[stage.Image]digest.Digest // config pushed, per image
}

// NewOutput opens the destination. opts.Cache and opts.Pushed are shared by
// every sink it makes (Pushed is made when nil).
func NewOutput(t *transport.Transport, opts Options) *Output {
	if opts.Pushed == nil {
		opts.Pushed = NewPushed()
	}
	return &Output{t: t, opts: opts, configs: map[stage.Image]digest.Digest{}}
}

// Sink gives the sink of one image: the destination's repository and tag.
func (o *Output) Sink(img stage.Image) (stage.Sink, error) {
	s := New(o.t, o.opts)
	s.pushedConfig = func(d digest.Digest) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.configs[img] = d
	}
	return s, nil
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
// are an error (the caller warns "Verification failed").
func (o *Output) Verify(ctx context.Context, img stage.Image, _ bool) ([]string, error) {
	reg := o.t.Registry(o.opts.Host, o.opts.Registry)
	m, err := reg.GetManifest(ctx, o.opts.Repo, o.opts.Tag, []string{MediaTypeDockerManifest, MediaTypeOCIManifest})
	if errors.Is(err, transport.ErrNotFound) {
		return []string{"Manifest not found"}, nil
	}
	if err != nil {
		return nil, err
	}
	var man v1.Manifest
	if err := json.Unmarshal(m.Body, &man); err != nil {
		return []string{fmt.Sprintf("Manifest not found (unparseable: %v)", err)}, nil
	}
	var problems []string
	o.mu.Lock()
	want, ok := o.configs[img]
	o.mu.Unlock()
	if ok && man.Config.Digest != want {
		problems = append(problems, fmt.Sprintf("config digest mismatch: manifest has %s, pushed %s", man.Config.Digest, want))
	}
	// The HEADs go at once (up to 16, or 2×Workers): one round trip, not one per
	// blob. Problems keep the manifest's order.
	blobs := append([]v1.Descriptor{man.Config}, man.Layers...)
	missing := make([]bool, len(blobs))
	p := pool.New().WithContext(ctx).WithFirstError().WithMaxGoroutines(max(2*o.opts.Workers, 16))
	for i, d := range blobs {
		p.Go(func(ctx context.Context) error {
			there, _, err := reg.BlobExists(ctx, o.opts.Repo, d.Digest)
			missing[i] = !there
			return err
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	for i, d := range blobs {
		if missing[i] {
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
	_ stage.Sink           = (*Sink)(nil)
	_ stage.CompressedSink = (*Sink)(nil)
)
