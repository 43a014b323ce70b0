package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/sources/proxy"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport"
)

// ProxyCmd is `occystrap proxy`: a registry that filters what passes
// through it into a downstream registry.
type ProxyCmd struct {
	Downstream       string   `short:"d" required:"" placeholder:"HOST[/PREFIX]" help:"Registry the images go to."`
	Listen           string   `short:"l" default:"127.0.0.1:5050" placeholder:"HOST[:PORT]" help:"Address to serve plain HTTP on (port 5050 if none given)."`
	Filter           []string `short:"f" sep:"none" placeholder:"SPEC" help:"Filter, name[:key=value,...]; repeatable, the first given is applied first."`
	Concurrency      int      `short:"c" default:"4" help:"Images processed at once."`
	Upstream         string   `short:"u" placeholder:"[USER:PASS@]HOST" help:"Registry to pull images from when the downstream lacks them (pull-through mode)."`
	UpstreamUsername string   `name:"upstream-username" env:"OCCYSTRAP_UPSTREAM_USERNAME" help:"Upstream user name (overrides one in --upstream)."`
	UpstreamPassword string   `name:"upstream-password" env:"OCCYSTRAP_UPSTREAM_PASSWORD" help:"Upstream password (overrides one in --upstream)."`
}

// Run serves until interrupted.
func (c *ProxyCmd) Run(ctx context.Context, a *app) error {
	addr, err := proxy.ListenAddr(c.Listen)
	if err != nil {
		return err
	}
	if strings.Trim(c.Downstream, "/") == "" {
		return fmt.Errorf("--downstream %q: expected HOST[/PREFIX]", c.Downstream)
	}
	a.filterSpecs = c.Filter
	facs, err := makeFilters(ctx, a, c.Filter)
	if err != nil {
		return err
	}
	t, err := a.transport()
	if err != nil {
		return err
	}
	upHost, upUser, upPass := proxy.ParseUpstream(c.Upstream)
	if c.UpstreamUsername != "" {
		upUser = c.UpstreamUsername
	}
	if c.UpstreamPassword != "" {
		upPass = c.UpstreamPassword
	}
	sink := registrysink.Options{Compression: a.g.Compression, Workers: a.g.Parallel, Pushed: a.pushedSet()}
	if a.g.LayerCache != "" {
		lc, warn := layercache.Open(a.g.LayerCache)
		if warn != nil {
			zerolog.Ctx(ctx).Warn().Err(warn).Msg("Layer cache ignored")
		}
		sink.Cache = lc
		sink.FiltersHash = layercache.FiltersHash(sink.Compression, c.Filter)
	}
	z, err := a.inflater(ctx)
	if err != nil {
		return err
	}
	return proxy.ListenAndServe(ctx, addr, proxy.Options{
		Transport:          t,
		Downstream:         c.Downstream,
		DownstreamRegistry: transport.RegistryOptions{Insecure: a.g.Insecure, Username: a.g.Username, Password: a.g.Password},
		Upstream:           upHost,
		UpstreamRegistry:   transport.RegistryOptions{Insecure: a.g.Insecure, Username: upUser, Password: upPass},
		Concurrency:        c.Concurrency,
		TempDir:            a.g.TempDir,
		Filters:            func(img stage.Image) ([]stage.Stage, error) { return buildFilters(facs, img) },
		Sink:               sink,
		Source:             registrysrc.Options{OS: a.g.OS, Architecture: a.g.Architecture, Variant: a.g.Variant, Workers: a.g.Parallel, Inflate: z},
		Inflate:            z,
		Engine:             stage.Options{Window: 2 * max(a.g.Parallel, 1), Buffer: max(a.g.Parallel, 1)},
	})
}
