package main

import (
	"context"

	"github.com/occystrap/occystrap/internal/uri"
	"github.com/occystrap/occystrap/sinks/tarball"
)

func init() {
	outputs["tar"] = func(ctx context.Context, a *app, u uri.URI) (output, error) {
		if err := knownOptions(u); err != nil {
			return nil, err
		}
		return tarball.New(u.Path, tarball.Options{TempDir: a.g.TempDir})
	}
}
