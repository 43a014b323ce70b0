package main

import (
	"context"

	"github.com/occystrap/occystrap/internal/platform"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

// tar://PATH (alias file://): an image archive of any layout tools write
// (docker save, crane, skopeo, regctl, podman), compressed as a whole or not.
// It takes no URI option; one given is refused, as every scheme does.
func init() {
	inputs["tar"] = func(_ context.Context, a *app, u uri.URI) (stage.Input, error) {
		if err := knownOptions(u); err != nil {
			return nil, err
		}
		return tarballsrc.OpenWith(u.Path, tarballsrc.Options{
			TempDir:  a.g.TempDir,
			Inflate:  a.chosenInflater(),
			Platform: platform.Platform{OS: a.g.OS, Architecture: a.g.Architecture, Variant: a.g.Variant},
		})
	}
}
