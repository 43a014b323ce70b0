package main

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/inflate"
)

// inflateState holds the run's one gzip inflater, chosen on first use.
type inflateState struct {
	once sync.Once
	z    *inflate.Inflater
	err  error
}

// inflater returns the run's inflater (OCCYSTRAP_INFLATE / --inflate),
// choosing it the first time and saying which one runs in a debug line.
func (a *app) inflater(ctx context.Context) (*inflate.Inflater, error) {
	a.inflate.once.Do(func() {
		a.inflate.z, a.inflate.err = inflate.New(ctx, a.g.Inflate)
		if a.inflate.err == nil {
			zerolog.Ctx(ctx).Debug().Str("mode", a.g.Inflate).Str("inflater", a.inflate.z.Name()).
				Str("igzip", a.inflate.z.Path()).Str("use", a.inflate.z.Describe()).Msg("Gzip inflater chosen")
		}
	})
	return a.inflate.z, a.inflate.err
}

// chosenInflater is the inflater chosen by an earlier call of inflater
// (openInput and the multi-image run make it before any source).
func (a *app) chosenInflater() *inflate.Inflater { return a.inflate.z }

// closeInflater kills any igzip process left when the run ends.
func (a *app) closeInflater() {
	if a.inflate.z != nil {
		a.inflate.z.Close()
	}
}
