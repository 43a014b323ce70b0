package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/internal/shard"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/sources/quay"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/reference"
)

// PlanCmd is `occystrap plan SOURCE --shards N [--out FILE]`.
type PlanCmd struct {
	Source string `arg:"" name:"source" help:"Multi-image input URI: quay://NAMESPACE/GLOB:TAG[?since=...]."`
	Shards int    `required:"" env:"OCCYSTRAP_SHARDS" help:"Number of shards to split the images into (at least 1)."`
	Out    string `type:"path" completion:"file" help:"Also write the plan as JSON to FILE, for process --plan."`
}

// planFile is the plan as written by plan --out and read by process --plan.
type planFile struct {
	Source string `json:"source"`
	shard.Plan
}

// Run resolves the source, reads every image's manifest (no layers) and
// prints the plan.
func (c *PlanCmd) Run(ctx context.Context, a *app) error {
	if c.Shards < 1 {
		return usageErrorf("--shards %d: want at least 1", c.Shards)
	}
	p, _, err := makePlan(ctx, a, c.Source, c.Shards)
	if err != nil {
		return err
	}
	pf := planFile{Source: redact.URI(c.Source), Plan: p}
	if c.Out != "" {
		if err := writePlan(c.Out, pf); err != nil {
			return err
		}
	}
	if a.g.OutputFormat == "json" {
		return writeJSON(a.stdout, pf)
	}
	printPlan(a.stdout, pf)
	return nil
}

func printPlan(w io.Writer, pf planFile) {
	p := pf.Plan
	for k, s := range p.Shards {
		fmt.Fprintf(w, "Shard %d/%d: %d images, %s\n", k, len(p.Shards), len(s.Images), formatSize(s.Bytes))
		for _, im := range s.Images {
			fmt.Fprintf(w, "    %s\n", im)
		}
	}
	ratio := func(n int64) string {
		if p.SingleBytes == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", float64(n)/float64(p.SingleBytes))
	}
	fmt.Fprintf(w, "Fetched by all shards: %s (%s a single run's %s); round-robin shards would fetch %s (%s)\n",
		formatSize(p.Bytes), ratio(p.Bytes), formatSize(p.SingleBytes), formatSize(p.RoundRobinBytes), ratio(p.RoundRobinBytes))
}

// makePlan resolves a quay:// source and plans its images into n shards,
// returning the plan and the resolved images.
func makePlan(ctx context.Context, a *app, src string, n int) (shard.Plan, []quay.Ref, error) {
	u, err := uri.ParseInput(src)
	if err != nil {
		return shard.Plan{}, nil, usage(err)
	}
	if u.Scheme != "quay" {
		return shard.Plan{}, nil, usageErrorf("%s: sharding needs a multi-image source (quay://NAMESPACE/GLOB:TAG), not %s://", redact.URI(src), u.Scheme)
	}
	spec, err := quay.ParseURI(u, os.Getenv(quayHostEnv), a.g.Password, a.g.Insecure)
	if err != nil {
		return shard.Plan{}, nil, usage(err)
	}
	t, err := a.transport()
	if err != nil {
		return shard.Plan{}, nil, err
	}
	refs, err := quay.Resolve(ctx, t.Quay(spec.Host, transport.QuayOptions{Insecure: spec.Insecure, Token: spec.Token}), spec, a.tagChecks())
	if err != nil {
		return shard.Plan{}, nil, err
	}
	opts := make([]registrysrc.Options, len(refs))
	for i, r := range refs {
		opts[i] = sourceOptions(a, spec, r, nil)
	}
	mans, err := registrysrc.Survey(ctx, t, opts, a.g.Parallel*max(a.g.ImageParallel, 1))
	if err != nil {
		return shard.Plan{}, nil, fmt.Errorf("read manifests of %s: %w", redact.URI(src), err)
	}
	imgs := make([]shard.Image, len(refs))
	for i, m := range mans {
		im := shard.Image{Name: refs[i].String(), Config: shard.Blob{Digest: m.Config.Digest.String(), Size: m.Config.Size}}
		for _, l := range m.Layers {
			im.Layers = append(im.Layers, shard.Blob{Digest: l.Digest.String(), Size: l.Size})
		}
		imgs[i] = im
	}
	return shard.New(imgs, n), refs, nil
}

// writePlan writes pf to name through a temporary file.
func writePlan(name string, pf planFile) error {
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), tempname.Output(filepath.Base(name))+"-*")
	if err != nil {
		return fmt.Errorf("write plan %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plan %s: %w", name, err)
	}
	return os.Rename(tmp.Name(), name)
}

// writeJSON writes v to w as indented JSON, for the -O json form of
// plan, ls and process --dry-run.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readPlan reads a plan written by plan --out.
func readPlan(name string) (planFile, error) {
	var pf planFile
	b, err := os.ReadFile(name)
	if err != nil {
		return pf, fmt.Errorf("read plan: %w", err)
	}
	if err := json.Unmarshal(b, &pf); err != nil {
		return pf, fmt.Errorf("read plan %s: %w", name, err)
	}
	return pf, nil
}

// shardArg is --shard, or its default from an Indexed Job's environment:
// $JOB_COMPLETION_INDEX/$OCCYSTRAP_SHARDS when both are set.
func shardArg(flag string) string {
	if flag != "" {
		return flag
	}
	idx, n := os.Getenv("JOB_COMPLETION_INDEX"), os.Getenv("OCCYSTRAP_SHARDS")
	if idx != "" && n != "" {
		return idx + "/" + n
	}
	return ""
}

// shardRefs is the images of shard k/n of src: from the plan file when one
// is given, else from a plan computed now (the same for the same source
// state).
func shardRefs(ctx context.Context, a *app, src, spec, planName string) ([]quay.Ref, error) {
	k, n, err := shard.ParseSpec(spec)
	if err != nil {
		return nil, usageErrorf("--shard: %v", err)
	}
	var p shard.Plan
	var refs []quay.Ref
	if planName != "" {
		pf, err := readPlan(planName)
		if err != nil {
			return nil, err
		}
		if len(pf.Shards) != n {
			return nil, usageErrorf("--shard %s: the plan %s has %d shards", spec, planName, len(pf.Shards))
		}
		p = pf.Plan
		for _, name := range p.Shards[k].Images {
			r, err := parseRef(name)
			if err != nil {
				return nil, fmt.Errorf("plan %s: %w", planName, err)
			}
			refs = append(refs, r)
		}
	} else {
		if p, refs, err = makePlan(ctx, a, src, n); err != nil {
			return nil, err
		}
	}
	var mine []quay.Ref
	for _, r := range refs {
		if p.Shard(r.String()) == k {
			mine = append(mine, r)
		}
	}
	return mine, nil
}

// parseRef reads a quay.Ref back from its String form HOST/NS/NAME:TAG.
func parseRef(s string) (quay.Ref, error) {
	host, rest, ok := strings.Cut(s, "/")
	r, err := reference.ParseName(rest)
	if !ok || host == "" || err != nil || r.Repo == "" || r.Tag == "" || r.Digest != "" {
		return quay.Ref{}, fmt.Errorf("image %q: want HOST/NAMESPACE/NAME:TAG", s)
	}
	return quay.Ref{Host: host, Repo: r.Repo, Tag: r.Tag}, nil
}
