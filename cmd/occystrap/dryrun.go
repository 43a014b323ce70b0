package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/sources/quay"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage/schedule"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// planned is one image of a dry run.
type planned struct {
	Reference   string `json:"reference"`
	Destination string `json:"destination"`
	Layers      int    `json:"layers"`
	Bytes       int64  `json:"bytes"`
	Error       string `json:"error,omitempty"`

	layers []v1.Descriptor
}

// dryRunPlan is what a dry run prints.
type dryRunPlan struct {
	Source         string    `json:"source"`
	Destination    string    `json:"destination"`
	Images         []planned `json:"images"`
	LayersTotal    int       `json:"layers_total"`
	LayersDistinct int       `json:"layers_distinct"`
	BytesToFetch   int64     `json:"bytes_to_fetch"`
}

// dryRun resolves the source, fetches each image's manifest (and config)
// and prints what process would copy and the compressed bytes of the layers
// it would fetch, a layer shared by several images counted once. It opens
// no output and writes nothing.
func (c *ProcessCmd) dryRun(ctx context.Context, a *app) error {
	u, err := uri.ParseInput(c.Source)
	if err != nil {
		return err
	}
	if _, err := uri.ParseOutput(c.Destination); err != nil {
		return err
	}
	if _, err := makeFilters(ctx, a, c.Filter); err != nil {
		return err
	}
	p := dryRunPlan{Source: c.Source, Destination: c.Destination}
	switch u.Scheme {
	case "quay":
		if p.Images, err = planQuay(ctx, a, u, c.Destination); err != nil {
			return err
		}
	case "registry":
		src, _, err := openInput(ctx, a, c.Source)
		if err != nil {
			return err
		}
		defer src.Close()
		rs := src.(*registrysrc.Source)
		ref, _ := u.Reference()
		host := ref.Host
		img := src.Image()
		p.Images = []planned{planImage(ctx, rs, host+"/"+img.Name+":"+img.Tag, c.Destination)}
	default:
		return fmt.Errorf("--dry-run takes registry:// and quay:// sources, not %s://", u.Scheme)
	}
	failed := 0
	seen := map[string]bool{}
	for _, im := range p.Images {
		if im.Error != "" {
			failed++
			continue
		}
		for _, l := range im.layers {
			p.LayersTotal++
			if !seen[l.Digest.String()] {
				seen[l.Digest.String()] = true
				p.LayersDistinct++
				p.BytesToFetch += l.Size
			}
		}
	}
	if a.g.OutputFormat == "json" {
		if p.Images == nil {
			p.Images = []planned{}
		}
		if err := writeJSON(a.stdout, p); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "Dry run: nothing is written. %d image(s) from %s:\n", len(p.Images), c.Source)
		for _, im := range p.Images {
			if im.Error != "" {
				fmt.Fprintf(a.stdout, "  %s: failed: %s\n", im.Reference, im.Error)
				continue
			}
			fmt.Fprintf(a.stdout, "  %s -> %s: %d layers, %s\n", im.Reference, im.Destination, im.Layers, formatSize(im.Bytes))
		}
		fmt.Fprintf(a.stdout, "Would fetch %d distinct layers of %d (shared layers counted once), %s compressed.\n",
			p.LayersDistinct, p.LayersTotal, formatSize(p.BytesToFetch))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images failed: %w", failed, len(p.Images), errImagesFailed)
	}
	return nil
}

// planQuay resolves a quay:// source and plans its images, -J at a time.
func planQuay(ctx context.Context, a *app, u uri.URI, dest string) ([]planned, error) {
	spec, err := quay.ParseURI(u, os.Getenv(quayHostEnv), a.g.Password, a.g.Insecure)
	if err != nil {
		return nil, err
	}
	t, err := a.transport()
	if err != nil {
		return nil, err
	}
	refs, err := quay.Resolve(ctx, t.Quay(spec.Host, transport.QuayOptions{Insecure: spec.Insecure, Token: spec.Token}), spec, a.tagChecks())
	if err != nil {
		return nil, err
	}
	du, err := uri.ParseOutput(dest)
	if err != nil {
		return nil, err
	}
	switch du.Scheme {
	case "tar", "oci", "mounts":
		//lint:ignore ST1005 the original occystrap's exact message, which users grep for
		return nil, fmt.Errorf("%s:// output is not supported for multi-image sources, as every image would overwrite the last. Use dir://?unique_names=true instead.", du.Scheme)
	}
	out, _ := schedule.Each(ctx, a.g.ImageParallel, refs, func(ctx context.Context, _ int, ref quay.Ref) (planned, error) { // failures are planned
		d, err := multiDestination(dest, ref)
		if err != nil {
			return planned{Reference: ref.String(), Error: err.Error()}, nil
		}
		return planImage(ctx, registrysrc.New(t, sourceOptions(a, spec, ref, nil)), ref.String(), d), nil
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// planImage fetches one image's manifest and config.
func planImage(ctx context.Context, src *registrysrc.Source, ref, dest string) planned {
	p := planned{Reference: ref, Destination: dest}
	md, err := src.Metadata(ctx)
	if err == nil && len(md.Config) == 0 {
		err = errors.New("the manifest has no config")
	}
	if err != nil {
		p.Error = err.Error()
		return p
	}
	p.layers = md.Parsed.Layers
	p.Layers = len(p.layers)
	for _, l := range p.layers {
		p.Bytes += l.Size
	}
	return p
}
