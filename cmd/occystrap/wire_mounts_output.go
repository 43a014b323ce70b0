package main

import (
	"context"
	"os"

	"github.com/occystrap/occystrap/sinks/mounts"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() {
	outputs["mounts"] = func(ctx context.Context, a *app, u uri.URI) (stage.Output, error) {
		if err := knownOptions(u); err != nil {
			return nil, err
		}
		return mounts.New(u.Path, mounts.Options{Parallel: a.g.Parallel, SameOwner: os.Geteuid() == 0})
	}
}
