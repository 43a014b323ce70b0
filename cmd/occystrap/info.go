package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/redact"
	dockersrc "github.com/occystrap/occystrap/sources/docker"
	"github.com/occystrap/occystrap/sources/quay"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	tarballsrc "github.com/occystrap/occystrap/sources/tarball"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/imageinfo"
	"github.com/occystrap/occystrap/stage/schedule"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// InfoCmd is `occystrap info SOURCE`.
type InfoCmd struct {
	Source string `arg:"" name:"source" help:"Input URI: registry://HOST/IMAGE[:TAG], docker://IMAGE[:TAG], tar://PATH or quay://ORG[/GLOB][:TAG]."`
}

// Run prints the image's metadata; no layer is read.
func (c *InfoCmd) Run(ctx context.Context, a *app) error {
	if isMulti(c.Source) {
		return c.runMulti(ctx, a)
	}
	im, err := openImageMeta(ctx, a, c.Source)
	if err != nil {
		return err
	}
	defer im.close()
	info := imageinfo.Info(im.meta)
	if im.index != nil {
		setIndex(info, im.index)
	}
	return imageinfo.WriteInfo(a.stdout, a.g.OutputFormat, info)
}

// setIndex adds the list an image was chosen from to its info.
func setIndex(info *pyjson.Object, idx *registrysrc.IndexInfo) {
	entries := make([]imageinfo.IndexEntry, len(idx.Manifests))
	for i, d := range idx.Manifests {
		entries[i] = imageinfo.IndexEntry{Digest: d.Digest.String(), MediaType: d.MediaType}
		if d.Platform != nil {
			entries[i].Platform = platformString(d.Platform)
		}
	}
	imageinfo.SetIndex(info, idx.Digest.String(), idx.MediaType, entries)
}

// runMulti prints the info of every image a quay:// source resolves to,
// fetched -J at a time, in sorted order.
func (c *InfoCmd) runMulti(ctx context.Context, a *app) error {
	u, err := uri.ParseInput(c.Source)
	if err != nil {
		return usage(err)
	}
	spec, err := quay.ParseURI(u, os.Getenv(quayHostEnv), a.g.Password, a.g.Insecure)
	if err != nil {
		return usage(err)
	}
	t, err := a.transport()
	if err != nil {
		return err
	}
	refs, err := quay.Resolve(ctx, t.Quay(spec.Host, transport.QuayOptions{Insecure: spec.Insecure, Token: spec.Token}), spec, a.tagChecks())
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		a.out.printer.Status("No images found", "No images found matching "+redact.URI(c.Source), func(e *zerolog.Event) {
			e.Str("source", redact.URI(c.Source)).Str("text", "No images found matching "+redact.URI(c.Source))
		})
		return nil
	}
	infos, _ := schedule.Each(ctx, a.g.ImageParallel, refs, func(ctx context.Context, _ int, ref quay.Ref) (*pyjson.Object, error) { // failures are infos
		src := registrysrc.New(t, registrysrc.Options{
			Host: ref.Host, Repo: ref.Repo, Tag: ref.Tag,
			OS: a.g.OS, Architecture: a.g.Architecture, Variant: a.g.Variant,
			Registry: transport.RegistryOptions{Insecure: spec.Insecure},
		})
		m, err := registryMeta(ctx, src, ref.Repo, ref.Tag)
		if err == nil {
			info := imageinfo.Info(m)
			if idx := src.Index(); idx != nil {
				setIndex(info, idx)
			}
			return info, nil
		}
		zerolog.Ctx(ctx).Error().Err(err).Str("image", ref.String()).Msg("Info failed")
		return imageinfo.ErrorInfo(ref.Repo, ref.Tag, err), nil
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	failed, err := imageinfo.WriteInfos(a.stdout, a.g.OutputFormat, infos)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images failed: %w", failed, len(refs), errImagesFailed)
	}
	return nil
}

// imageMeta is an opened input with its metadata; full, when set, is the
// source a full check streams.
type imageMeta struct {
	meta  imageinfo.Meta
	full  func(ctx context.Context) stage.Source
	close func()
	// index is the manifest list the image was chosen from, if any.
	index *registrysrc.IndexInfo
}

// openImageMeta opens the input s names and reads its metadata: the
// manifest and config of a registry image, the config of a tar archive,
// the engine's inspect for docker.
func openImageMeta(ctx context.Context, a *app, s string) (*imageMeta, error) {
	u, err := uri.ParseInput(s)
	if err != nil {
		return nil, usage(err)
	}
	switch u.Scheme {
	case "registry", "tar", "docker":
	default:
		//lint:ignore ST1005 the original occystrap's exact message, which users grep for
		return nil, fmt.Errorf("Unknown input scheme: %s", u.Scheme)
	}
	src, _, err := openInput(ctx, a, s)
	if err != nil {
		return nil, err
	}
	im := &imageMeta{close: func() { _ = src.Close() }}
	img := src.Image()
	switch x := src.(type) {
	case *registrysrc.Source:
		var md registrysrc.Metadata
		md, im.meta, err = registryMetadata(ctx, x, img.Name, img.Tag)
		im.index = x.Index()
		im.full = func(ctx context.Context) stage.Source { return registryItems(ctx, x, md) }
	case *tarballsrc.Source:
		im.meta, err = imageinfo.ParseMeta(img.Name, img.Tag, nil, x.Config())
		// check reports a bad config or DiffID itself.
		im.full = func(context.Context) stage.Source { return x.Unchecked() }
	case *dockersrc.Source:
		var c interface {
			InspectRaw(context.Context, string) ([]byte, error)
		}
		if c, err = dockerEngine(u); err == nil {
			var raw []byte
			if raw, err = c.InspectRaw(ctx, img.String()); err == nil {
				im.meta, err = imageinfo.DockerMeta(img.Name, img.Tag, raw)
			}
		}
		im.full = func(context.Context) stage.Source { return x }
	default:
		err = errors.New("info and check do not support this input")
	}
	if err != nil {
		im.close()
		return nil, err
	}
	return im, nil
}

func registryMeta(ctx context.Context, src *registrysrc.Source, name, tag string) (imageinfo.Meta, error) {
	_, m, err := registryMetadata(ctx, src, name, tag)
	return m, err
}

func registryMetadata(ctx context.Context, src *registrysrc.Source, name, tag string) (registrysrc.Metadata, imageinfo.Meta, error) {
	md, err := src.Metadata(ctx)
	if err != nil {
		return md, imageinfo.Meta{}, err
	}
	m, err := imageinfo.ParseMeta(name, tag, md.Manifest, md.Config)
	return md, m, err
}

// registryItems is the config and the layers of a registry image, each
// layer downloaded when the check reads it.
func registryItems(ctx context.Context, src *registrysrc.Source, md registrysrc.Metadata) stage.Source {
	items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: md.Parsed.Config.Digest.Encoded() + ".json", Size: -1, Data: md.Config}}
	for i, l := range md.Parsed.Layers {
		items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: l.Digest.Encoded(), Size: -1, Body: src.LayerBody(ctx, l)})
	}
	return &imageinfo.ItemSource{Items: items}
}
