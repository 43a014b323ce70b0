package registry

import (
	"context"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/transport"
)

// Manifest fetches the image's manifest (the platform's, when the tag names
// a list) and nothing else.
func (s *Source) Manifest(ctx context.Context) (v1.Manifest, error) { return s.resolve(ctx) }

// Survey fetches the manifest of every image in opts, workers at a time, and
// no blob: what a bulk run would fetch, known before it fetches it. The
// first error stops the survey.
func Survey(ctx context.Context, t *transport.Transport, opts []Options, workers int) ([]v1.Manifest, error) {
	out := make([]v1.Manifest, len(opts))
	p := pool.New().WithContext(ctx).WithCancelOnError().WithFirstError().WithMaxGoroutines(max(workers, 1))
	for i, o := range opts {
		p.Go(func(ctx context.Context) error {
			m, err := New(t, o).Manifest(ctx)
			if err != nil {
				return err
			}
			out[i] = m
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
