package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/sources/dockerpush"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/stage/uri"
)

// dockerpush://IMAGE[:TAG][?socket=PATH]: an image in the local Docker
// engine, pushed by the engine to an embedded registry. With --layer-cache
// FILE, FILE.digests remembers the blobs the engine pushed, so that it is
// not sent the layers the output already has.
func init() {
	inputs["dockerpush"] = func(ctx context.Context, a *app, u uri.URI) (stage.Input, error) {
		if err := knownOptions(u, "socket"); err != nil {
			return nil, err
		}
		c, err := dockerEngine(u)
		if err != nil {
			return nil, err
		}
		opts := dockerpush.Options{TempDir: a.g.TempDir, Inflate: a.chosenInflater()}
		if a.g.LayerCache != "" {
			d, warn := layercache.OpenDigests(a.g.LayerCache)
			if warn != nil {
				zerolog.Ctx(ctx).Warn().Err(warn).Msg("Layer digests ignored")
			}
			opts.Digests = d
		}
		return dockerpush.Open(ctx, c, dockerImage(u), opts)
	}
}
