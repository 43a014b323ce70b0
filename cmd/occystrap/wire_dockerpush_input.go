package main

import (
	"context"

	"github.com/occystrap/occystrap/internal/uri"
	"github.com/occystrap/occystrap/sources/dockerpush"
)

// dockerpush://IMAGE[:TAG][?socket=PATH]: an image in the local Docker
// engine, pushed by the engine to an embedded registry.
func init() {
	inputs["dockerpush"] = func(ctx context.Context, a *app, u uri.URI) (source, error) {
		if err := knownOptions(u, "socket"); err != nil {
			return nil, err
		}
		c, err := dockerEngine(u)
		if err != nil {
			return nil, err
		}
		return dockerpush.Open(ctx, c, dockerImage(u), dockerpush.Options{TempDir: a.g.TempDir, Inflate: a.chosenInflater()})
	}
}
