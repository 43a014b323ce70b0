package main

import (
	"context"
	"os"

	"github.com/occystrap/occystrap/sinks/oci"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() {
	outputs["oci"] = func(ctx context.Context, a *app, u uri.URI) (stage.Output, error) {
		if err := knownOptions(u); err != nil {
			return nil, err
		}
		return oci.New(u.Path, oci.Options{SameOwner: os.Geteuid() == 0})
	}
}
