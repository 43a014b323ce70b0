package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/progress"
	"github.com/occystrap/occystrap/stage/schedule"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// --all-platforms (or ?all_platforms=true on the registry:// input) copies
// a whole manifest list registry to registry: every child image (children
// in parallel, -J at a time, each as a passthrough copy whose blobs the run
// pushes once and mounts elsewhere), then the list itself, as fetched and
// last, so that its digest is kept. A tag naming a single image is copied as
// usual.

// errAllPlatformsOutput is the refusal of an output that cannot hold a list.
var errAllPlatformsOutput = errors.New("--all-platforms copies a whole manifest list and needs a registry:// destination; " +
	"dir://, tar://, oci://, mounts:// and docker:// hold one image: choose its platform with --platform instead")

// allPlatforms reports whether the run copies every platform: the global
// flag, or the registry input's all_platforms option.
func allPlatforms(a *app, src string) (bool, error) {
	u, err := uri.ParseInput(src)
	if err != nil {
		return false, usage(err)
	}
	if u.Scheme != "registry" {
		return a.g.AllPlatforms, nil
	}
	all, err := u.Bool("all_platforms", a.g.AllPlatforms)
	return all, usage(err)
}

// checkAllPlatforms refuses what --all-platforms cannot do, before anything
// runs: a source other than a registry (or quay://), an output other than
// a registry, and filters (the list's digest could not be kept).
func checkAllPlatforms(src, dest string, filters []string) error {
	su, err := uri.ParseInput(src)
	if err != nil {
		return err
	}
	if su.Scheme != "registry" && su.Scheme != "quay" {
		return fmt.Errorf("--all-platforms: %s:// input holds one image; it needs a registry:// (or quay://) source", su.Scheme)
	}
	du, err := uri.ParseOutput(dest)
	if err != nil {
		return err
	}
	if du.Scheme != "registry" {
		return fmt.Errorf("%s:// output: %w", du.Scheme, errAllPlatformsOutput)
	}
	if len(filters) > 0 {
		return errors.New("--all-platforms copies images unchanged, keeping the list's digest: it takes no filters")
	}
	return nil
}

// indexCopy is what copyIndex did.
type indexCopy struct {
	digest   digest.Digest // of the list, in both registries
	children int
	layers   int64
	bytes    int64
	problems []string // verify's
}

// copyIndex copies what src's tag names into out when it is a manifest list
// (ok false when it names a single image: nothing was done).
func copyIndex(ctx context.Context, a *app, t *transport.Transport, src *registrysrc.Source, out *registrysink.Output) (res indexCopy, ok bool, err error) {
	top, err := src.Top(ctx)
	if err != nil {
		return res, false, err
	}
	if !registrysrc.IsIndex(top.MediaType) {
		return res, false, nil
	}
	c := &indexCopier{a: a, t: t, opts: src.Options(), out: out}
	if err := c.copyList(ctx, top); err != nil {
		return res, true, err
	}
	res = indexCopy{digest: top.Digest, children: int(c.children.Load()), layers: c.layers.Load(), bytes: c.bytes.Load()}
	got, err := out.PutManifest(ctx, top.MediaType, top.Body)
	if err != nil {
		return res, true, err
	}
	if got != top.Digest {
		return res, true, fmt.Errorf("pushed manifest list %s, the registry stored %s", top.Digest, got)
	}
	zerolog.Ctx(ctx).Info().Str("digest", top.Digest.String()).Int("children", res.children).Msg("Manifest list copied")
	if a.g.Verify || a.g.VerifyFull {
		res.problems, err = c.verify(ctx, top.Digest)
	}
	return res, true, err
}

// indexCopier copies the children of one list (and of lists nested in it).
type indexCopier struct {
	a    *app
	t    *transport.Transport
	opts registrysrc.Options
	out  *registrysink.Output

	children atomic.Int64
	layers   atomic.Int64
	bytes    atomic.Int64
}

// copyList copies every child of list m, -J at a time; a nested list is
// copied the same way and then pushed by digest.
func (c *indexCopier) copyList(ctx context.Context, m transport.Manifest) error {
	var idx v1.Index
	if err := json.Unmarshal(m.Body, &idx); err != nil {
		return fmt.Errorf("parse manifest list %s: %w", m.Digest, err)
	}
	_, err := schedule.Each(ctx, c.a.g.ImageParallel, idx.Manifests, func(ctx context.Context, _ int, d v1.Descriptor) (struct{}, error) {
		if registrysrc.IsIndex(d.MediaType) {
			return struct{}{}, c.copyNested(ctx, d)
		}
		return struct{}{}, c.copyChild(ctx, d)
	})
	return err
}

func (c *indexCopier) copyNested(ctx context.Context, d v1.Descriptor) error {
	reg := c.t.Registry(c.opts.Host, c.opts.Registry)
	m, err := reg.GetManifest(ctx, c.opts.Repo, d.Digest.String(), registrysrc.Accepted())
	if err != nil {
		return err
	}
	if err := c.copyList(ctx, m); err != nil {
		return err
	}
	_, err = c.out.ForRef(d.Digest.String()).PutManifest(ctx, m.MediaType, m.Body)
	return err
}

// copyChild copies one platform's image by digest, as a passthrough run
// (the manifest pushed as fetched).
func (c *indexCopier) copyChild(ctx context.Context, d v1.Descriptor) error {
	opts := c.opts
	opts.Tag = d.Digest.String()
	src := registrysrc.New(c.t, opts)
	defer src.Close()
	out := c.out.ForRef(d.Digest.String())
	img := src.Image()
	sink, err := out.Sink(img)
	if err != nil {
		return err
	}
	log := zerolog.Ctx(ctx).With().Str("child", d.Digest.String()).Logger()
	if d.Platform != nil {
		log = log.With().Str("platform", platformString(d.Platform)).Logger()
	}
	ctx = log.WithContext(ctx)
	im := accounting.NewRun().Image(d.Digest.String()) // the child's size, as its source stores it
	ctx = accounting.WithImage(ctx, im)
	rep, err := stage.Run(ctx, src, nil, sink, stage.Options{Window: 2 * max(c.a.g.Parallel, 1), Buffer: max(c.a.g.Parallel, 1)})
	if err != nil {
		return fmt.Errorf("platform %s (%s): %w", platformString(d.Platform), d.Digest, err)
	}
	c.children.Add(1)
	c.layers.Add(rep.Stages[len(rep.Stages)-1].Layers)
	c.bytes.Add(im.Figures().Size)
	log.Debug().Msg("Child image copied")
	return nil
}

// verify checks the destination's tag names the list's digest, and that
// every child the list names is there.
func (c *indexCopier) verify(ctx context.Context, want digest.Digest) ([]string, error) {
	m, err := c.out.Manifest(ctx, registrysrc.Accepted())
	if errors.Is(err, transport.ErrNotFound) {
		return []string{"Manifest not found"}, nil
	}
	if err != nil {
		return nil, err
	}
	var problems []string
	if m.Digest != want {
		problems = append(problems, fmt.Sprintf("manifest list digest mismatch: destination has %s, source %s", m.Digest, want))
	}
	var idx v1.Index
	if err := json.Unmarshal(m.Body, &idx); err != nil {
		return append(problems, fmt.Sprintf("Manifest not found (unparseable: %v)", err)), nil
	}
	for _, d := range idx.Manifests {
		if _, err := c.out.ForRef(d.Digest.String()).Manifest(ctx, registrysrc.Accepted()); err != nil {
			if errors.Is(err, transport.ErrNotFound) {
				problems = append(problems, "Manifest not found: "+d.Digest.String())
				continue
			}
			return nil, err
		}
	}
	return problems, nil
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "(no platform)"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// runAllPlatforms is process with --all-platforms for one image: done is
// false when the source's tag names a single image (the caller then copies
// it as usual).
func (c *ProcessCmd) runAllPlatforms(ctx context.Context, a *app, src stage.Input, out stage.Output, start time.Time) (done bool, err error) {
	rs, ok1 := src.(*registrysrc.Source)
	ro, ok2 := out.(*registrysink.Output)
	if !ok1 || !ok2 {
		return true, errAllPlatformsOutput
	}
	t, err := a.transport()
	if err != nil {
		return true, err
	}
	res, isIndex, err := copyIndex(ctx, a, t, rs, ro)
	if !isIndex || err != nil {
		return isIndex, err
	}
	sum := withNetwork(a, progress.Summary{Layers: res.layers, Bytes: res.bytes, Digest: res.digest.String(), Elapsed: time.Since(start)})
	if a.g.Verify || a.g.VerifyFull {
		sum.Verified = true
		sum.VerifyErrors = len(res.problems)
		for _, p := range res.problems {
			zerolog.Ctx(ctx).Error().Str("image", src.Image().String()).Str("problem", p).Msg("Verify error")
		}
	}
	sum.Emit(a.out.printer)
	if err := progress.WriteDigests(a.stdout, c.DigestFile, sum.Digest, nil); err != nil {
		return true, err
	}
	if sum.VerifyErrors > 0 {
		return true, errors.New("verification found problems with the output")
	}
	return true, nil
}
