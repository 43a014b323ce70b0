package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/redact"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() { outputs["registry"] = openRegistryOutput }

// openRegistryOutput opens registry://[HOST/]IMAGE[:TAG] (docker.io by
// default, see uri.URI.Reference); the URI's options
// insecure, compression, max_workers, username and password override the
// globals.
func openRegistryOutput(ctx context.Context, a *app, u uri.URI) (stage.Output, error) {
	if err := knownOptions(u, "insecure", "tls_verify", "compression", "max_workers", "username", "password"); err != nil {
		return nil, err
	}
	ref, err := u.Reference()
	if err != nil {
		return nil, err
	}
	t, err := a.transport()
	if err != nil {
		return nil, err
	}
	o := registrysink.Options{
		Host: ref.Host, Repo: ref.Repo, Tag: ref.Identifier(),
		Compression: a.g.Compression,
		Pushed:      a.pushedSet(),
	}
	if v, ok := u.String("compression"); ok {
		o.Compression = v
	}
	if o.Compression != registrysink.Gzip && o.Compression != registrysink.Zstd {
		return nil, fmt.Errorf("registry URI %q: compression %q: expected gzip or zstd", redact.URI(u.Raw), o.Compression)
	}
	if o.Registry, o.Workers, err = registryAccess(a, u); err != nil {
		return nil, err
	}
	if a.g.LayerCache != "" {
		c, warn := layercache.Open(a.g.LayerCache)
		if warn != nil {
			zerolog.Ctx(ctx).Warn().Err(warn).Msg("Layer cache ignored")
		}
		o.Cache = c
		o.FiltersHash = layercache.FiltersHash(o.Compression, a.filterSpecs)
	}
	return registrysink.NewOutput(t, o), nil
}
