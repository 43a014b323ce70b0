package main

import (
	"context"
	"fmt"

	"github.com/occystrap/occystrap/internal/platform"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() { inputs["registry"] = openRegistryInput }

// openRegistryInput opens registry://[HOST/]IMAGE[:TAG] (docker.io by
// default, see uri.URI.Reference); the URI's options os, arch/architecture,
// variant, platform, all_platforms, username, password, insecure,
// tls_verify and max_workers override the globals.
func openRegistryInput(_ context.Context, a *app, u uri.URI) (stage.Input, error) {
	if err := knownOptions(u, "os", "arch", "architecture", "variant", "platform", "all_platforms", "username", "password", "insecure", "tls_verify", "max_workers"); err != nil {
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
	o := registrysrc.Options{
		Host: ref.Host, Repo: ref.Repo, Tag: ref.Identifier(),
		OS: a.g.OS, Architecture: a.g.Architecture, Variant: a.g.Variant,
		TempDir: a.g.TempDir, Inflate: a.chosenInflater(),
	}
	if v, ok := u.String("os"); ok {
		o.OS = v
	}
	if v, ok := u.String("architecture"); ok {
		o.Architecture = v
	}
	if v, ok := u.String("arch"); ok {
		o.Architecture = v
	}
	if v, ok := u.String("variant"); ok {
		o.Variant = v
	}
	if v, ok := u.String("platform"); ok {
		p, err := platform.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("registry URI %q: option platform: %w", u.Raw, err)
		}
		o.OS, o.Architecture, o.Variant = p.OS, p.Architecture, p.Variant
	}
	if o.Registry, o.Workers, err = registryAccess(a, u); err != nil {
		return nil, err
	}
	return registrysrc.New(t, o), nil
}
