package main

import (
	"context"

	"github.com/occystrap/occystrap/internal/uri"
	"github.com/occystrap/occystrap/sources/tarball"
)

// tar://PATH (alias file://): a docker-save archive.
func init() {
	inputs["tar"] = func(_ context.Context, a *app, u uri.URI) (source, error) {
		return tarball.OpenWith(u.Path, tarball.Options{Inflate: a.chosenInflater()})
	}
}
