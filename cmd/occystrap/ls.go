package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/sources/quay"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// LsCmd is `occystrap ls SOURCE`: what a source holds, without copying it
// (crane ls, regctl tag ls, skopeo list-tags).
type LsCmd struct {
	Source string `arg:"" name:"source" help:"registry://[HOST/]REPOSITORY (its tags) or quay://ORG[/GLOB[:TAG]][?since=YYYY-MM-DD] (the images process would take)."`
}

// listed is one image ls found.
type listed struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Reference  string `json:"reference"`
}

// Run lists and prints: one reference (registry://: one tag) per line, or
// with -O json an array of {registry, repository, tag, reference}.
func (c *LsCmd) Run(ctx context.Context, a *app) error {
	u, err := uri.ParseInput(c.Source)
	if err != nil {
		return err
	}
	var found []listed
	tagsOnly := false
	switch u.Scheme {
	case "registry":
		tagsOnly = true
		if found, err = lsRegistry(ctx, a, u); err != nil {
			return err
		}
	case "quay":
		if found, err = lsQuay(ctx, a, u); err != nil {
			return err
		}
	default:
		return fmt.Errorf("ls lists registry:// repositories and quay:// organisations, not %s:// sources", u.Scheme)
	}
	if a.g.OutputFormat == "json" {
		if found == nil {
			found = []listed{}
		}
		return writeJSON(a.stdout, found)
	}
	for _, l := range found {
		if tagsOnly {
			fmt.Fprintln(a.stdout, l.Tag)
		} else {
			fmt.Fprintln(a.stdout, l.Reference)
		}
	}
	if len(found) == 0 && u.Scheme == "quay" {
		a.out.printer.Status("No images found", "No images found matching "+redact.URI(c.Source), func(e *zerolog.Event) {
			e.Str("source", redact.URI(c.Source)).Str("text", "No images found matching "+redact.URI(c.Source))
		})
	}
	return nil
}

func lsRegistry(ctx context.Context, a *app, u uri.URI) ([]listed, error) {
	if err := knownOptions(u, "username", "password", "insecure", "tls_verify"); err != nil {
		return nil, err
	}
	ref, err := u.Reference()
	if err != nil {
		return nil, err
	}
	host, repo := ref.Host, ref.Repo
	ro, _, err := registryAccess(a, u)
	if err != nil {
		return nil, err
	}
	t, err := a.transport()
	if err != nil {
		return nil, err
	}
	tags, err := t.Registry(host, ro).Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := make([]listed, 0, len(tags))
	for _, tag := range tags {
		out = append(out, listed{Registry: host, Repository: repo, Tag: tag, Reference: host + "/" + repo + ":" + tag})
	}
	return out, nil
}

func lsQuay(ctx context.Context, a *app, u uri.URI) ([]listed, error) {
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
	out := make([]listed, 0, len(refs))
	for _, r := range refs {
		out = append(out, listed{Registry: r.Host, Repository: r.Repo, Tag: r.Tag, Reference: r.String()})
	}
	return out, nil
}
