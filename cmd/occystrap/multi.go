package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/internal/shard"
	sinkreg "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/sources/quay"
	"github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

// Multi-image sources (quay://) resolve to many images; process runs them
// -J at a time on one transport, one output and one blob scheduler.

// quayHostEnv names the default Quay host for self-hosted Quay.
const quayHostEnv = "OCCYSTRAP_QUAY_HOST"

// isMulti reports whether src names many images.
func isMulti(src string) bool {
	u, err := uri.ParseInput(src)
	return err == nil && u.Scheme == "quay"
}

// errImagesFailed ends a multi-image run in which some image failed.
var errImagesFailed = errors.New("images failed")

// imageResult is what one image of a multi-image run came to.
type imageResult struct {
	ref          quay.Ref
	layers       int
	bytes        int64
	moved        int64
	digest       string
	err          error
	verified     bool
	verifyErrors []string
}

// runMulti processes every image the quay:// source resolves to.
func (c *ProcessCmd) runMulti(ctx context.Context, a *app) error {
	log := zerolog.Ctx(ctx)
	start := time.Now()
	u, err := uri.ParseInput(c.Source)
	if err != nil {
		return usage(err)
	}
	spec, err := quay.ParseURI(u, os.Getenv(quayHostEnv), a.g.Password, a.g.Insecure)
	if err != nil {
		return usage(err)
	}
	if sh := shardArg(c.Shard); sh != "" {
		if _, _, err := shard.ParseSpec(sh); err != nil {
			return usageErrorf("--shard: %v", err)
		}
	} else if c.Plan != "" {
		return usageErrorf("--plan %s: give --shard K/N too", c.Plan)
	}
	du, err := uri.ParseOutput(c.Destination)
	if err != nil {
		return usage(err)
	}
	perImage := false
	switch du.Scheme {
	case "tar", "oci", "mounts":
		return fmt.Errorf("%s:// output is not supported for multi-image sources, as every image would overwrite the last. Use dir://?unique_names=true instead.", du.Scheme)
	case "dir":
		if unique, _ := du.Bool("unique_names", false); !unique {
			log.Warn().Str("destination", redact.URI(c.Destination)).Str("hint", "every image writes manifest.json, so only the last image's manifest survives; use unique_names=true").Msg("dir:// without unique_names=true")
		}
	case "registry", "docker":
		perImage = true
	}
	filterFacs, err := makeFilters(ctx, a, c.Filter)
	if err != nil {
		return err
	}
	t, err := a.transport()
	if err != nil {
		return err
	}
	if _, err := a.inflater(ctx); err != nil {
		return err
	}
	jobs := max(a.g.ImageParallel, 1)

	// While the tags are checked, the images found so far are fetched ahead
	// (in the order they will be processed, at most aheadImages beyond the
	// -J being processed), and while images are processed, the next ones:
	// an image slot then finds its manifest, config and layers ready. The
	// layers are fetched ahead only into a shared output (opened when the
	// first image is found), which tells which layers it has already.
	var (
		shared  stage.Output
		openErr error
		has     func(string) bool
		found   []quay.Ref // guarded by foundMu
		foundMu sync.Mutex
	)
	run := accounting.NewRun()
	blobs := registry.NewBlobs()
	slots := make(chan struct{}, aheadSlots(a.g.Parallel, jobs))
	budget := registry.NewBudget(aheadBytes)
	fa := registry.NewLookahead(jobs+aheadImages(jobs), func(ctx context.Context, i int, resolved func()) *registry.Prefetched {
		foundMu.Lock()
		ref := found[i]
		foundMu.Unlock()
		// What is fetched ahead counts as the image's.
		ctx = accounting.WithImage(ctx, run.Image(ref.String()))
		return blobs.Prefetch(ctx, t, sourceOptions(a, spec, ref, blobs), registry.PrefetchOptions{
			Layers: shared != nil, Has: has, Resolved: resolved, Slots: slots, Budget: budget,
		})
	})
	defer func() {
		if shared != nil {
			shared.Close()
		}
	}()
	aheadCtx, stopAhead := context.WithCancel(ctx)
	ahead := pool.New().WithContext(aheadCtx)
	ahead.Go(fa.Run)
	defer func() { // before the output is closed
		stopAhead()
		_ = ahead.Wait()
		fa.ReleaseAll()
	}()

	resolveStart := time.Now()
	resolve := func(found func(quay.Ref)) ([]quay.Ref, error) {
		return quay.ResolveFunc(ctx, t.Quay(spec.Host, transport.QuayOptions{Insecure: spec.Insecure, Token: spec.Token}), spec, a.g.Parallel, found)
	}
	if sh := shardArg(c.Shard); sh != "" {
		// A shard: its images are known only once every image's manifest
		// is, so resolution runs whole first.
		mine, err := shardRefs(ctx, a, c.Source, sh, c.Plan)
		if err != nil {
			fa.Close()
			return err
		}
		log.Info().Str("event", "shard").Str("shard", sh).Int("images", len(mine)).Msg("Processing one shard")
		resolve = func(found func(quay.Ref)) ([]quay.Ref, error) {
			for _, r := range mine {
				found(r)
			}
			return mine, nil
		}
	}
	refs, err := resolve(
		func(ref quay.Ref) {
			// One output for all images, unless each gets its own name.
			if !perImage && shared == nil && openErr == nil {
				if shared, _, openErr = openOutput(ctx, a, c.Destination); openErr == nil {
					if h, ok := shared.(interface{ Has(name string) bool }); ok {
						has = h.Has
					}
				}
			}
			if openErr != nil {
				return
			}
			foundMu.Lock()
			found = append(found, ref)
			foundMu.Unlock()
			fa.Add()
		})
	fa.Close()
	if err != nil {
		return err
	}
	log.Debug().Dur("elapsed_ms", time.Since(resolveStart)).Int("images", len(refs)).Msg("Resolution complete")
	if len(refs) == 0 {
		a.out.printer.Status("No images found", "No images found matching "+redact.URI(c.Source), func(e *zerolog.Event) {
			e.Str("source", redact.URI(c.Source)).Str("text", "No images found matching "+redact.URI(c.Source))
		})
		return nil
	}
	if openErr != nil {
		return openErr
	}
	a.out.printer.Status("Processing images", fmt.Sprintf("Processing %d images (%d parallel)...", len(refs), jobs), func(e *zerolog.Event) {
		e.Int("images", len(refs)).Int("parallel", jobs)
	})

	run.SetTotal(len(refs))
	results := make([]imageResult, len(refs))
	stopProgress := startProgress(ctx, a, run)
	var doneMu sync.Mutex
	done := 0
	p := pool.New().WithContext(ctx).WithMaxGoroutines(jobs)
	// Verifications (and closing an image's own output) run after the
	// image leaves its slot, at most jobs at once: a slot whose image is
	// written waits only when that many are still verifying.
	verifying := pool.New().WithMaxGoroutines(jobs)
	for i, ref := range refs { // sorted, as found: started in this order
		p.Go(func(ctx context.Context) error {
			if err := fa.Take(ctx, i); err != nil {
				fa.Finished(i)
				results[i] = imageResult{ref: ref, err: err}
				run.Image(ref.String()).Finish(err)
				return nil
			}
			after := c.processImage(ctx, a, t, spec, ref, shared, c.Destination, filterFacs, blobs, run.Image(ref.String()), &results[i])
			fa.Finished(i)
			if results[i].err == nil {
				// Counted and printed under one lock: the [k/N] lines in order.
				doneMu.Lock()
				done++
				a.out.printer.Status("Image complete", fmt.Sprintf("[%d/%d] %s", done, len(refs), ref), func(e *zerolog.Event) {
					e.Str("image", ref.String()).Int("images_done", done).Int("images_total", len(refs))
				})
				doneMu.Unlock()
			}
			verifying.Go(func() { after(ctx) })
			return nil
		})
	}
	_ = p.Wait() // tasks report through results
	verifying.Wait()
	stopProgress()

	sum := summary{multi: true, totalImages: len(refs), elapsed: time.Since(start)}
	var failed, verifyFailed []imageResult
	for _, r := range results {
		o := imageOutcome{Image: r.ref.String(), Layers: int64(r.layers), Bytes: r.bytes, Moved: r.moved, Digest: r.digest, Err: r.err, VerifyErrors: r.verifyErrors}
		if r.err != nil {
			o.Err = redact.Error(r.err)
		}
		sum.outcomes = append(sum.outcomes, o)
		if r.err != nil {
			failed = append(failed, r)
			continue
		}
		sum.images++
		sum.layers += int64(r.layers)
		sum.bytes += r.bytes
		sum.moved += r.moved
		if r.verified {
			sum.verified = true
			sum.verifyErrors += len(r.verifyErrors)
			if len(r.verifyErrors) > 0 {
				verifyFailed = append(verifyFailed, r)
			}
		}
	}
	sum.failed = len(failed)
	if st, ok := a.transportStats(); ok {
		sum.retries, sum.rateLimits = st.Retries, st.RateLimited
		log.Debug().Int64("requests", st.Requests).Int64("retries", st.Retries).Int64("rate_limited", st.RateLimited).
			Int64("connections", st.Connections).Int64("bytes_in", st.BytesIn).Msg("Network")
	}
	bs := blobs.Stats()
	log.Info().Int64("layers_fetched", bs.Fetched).Int64("layers_shared", bs.Shared).Int64("layers_skipped", bs.Skipped).Msg("Layer transfers")
	sum.emit(a)
	if err := writeDigests(a, c.DigestFile, "", sum.outcomes); err != nil {
		return err
	}
	pr := a.out.printer
	if len(failed) == 0 && len(verifyFailed) == 0 {
		if !a.g.Quiet {
			pr.ConsoleOnly("No failed images.")
		}
		return ctx.Err()
	}
	if len(failed) > 0 {
		pr.ConsoleOnly("Failed images:")
		for _, r := range failed {
			pr.ConsoleOnly(fmt.Sprintf("  %s: %v", r.ref, redact.Error(r.err)))
		}
	}
	if len(verifyFailed) > 0 {
		pr.ConsoleOnly("Verification errors:")
		for _, r := range verifyFailed {
			for _, p := range r.verifyErrors {
				pr.ConsoleOnly(fmt.Sprintf("  %s: %s", r.ref, p))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images failed: %w", len(failed), len(refs), errImagesFailed)
	}
	return errors.New("verification found problems with the output")
}

// processImage runs one image into out (or, when out is nil, into the
// output dest names for this image), filling *r. It returns what is left to
// do once the image is written: verify it (when asked) and close its own
// output. The caller runs that outside the image's -J slot, so that the
// verification's round trips overlap the next image's.
func (c *ProcessCmd) processImage(ctx context.Context, a *app, t *transport.Transport, spec quay.Spec, ref quay.Ref,
	out stage.Output, dest string, facs []filterFactory, blobs *registry.Blobs, im *accounting.Image, r *imageResult) (after func(context.Context)) {
	r.ref = ref
	var closeOut func()
	after = func(context.Context) {
		if closeOut != nil {
			closeOut()
		}
	}
	log := zerolog.Ctx(ctx).With().Str("image", ref.String()).Logger()
	ctx = log.WithContext(ctx)
	if out == nil {
		d, err := multiDestination(dest, ref)
		if err != nil {
			r.err = err
			return after
		}
		o, _, err := openOutput(ctx, a, d)
		if err != nil {
			r.err = err
			return after
		}
		closeOut = func() { o.Close() }
		out = o
	}
	src := registry.New(t, sourceOptions(a, spec, ref, blobs))
	defer src.Close()
	img := src.Image()
	if a.g.AllPlatforms {
		if ro, ok := out.(*sinkreg.Output); ok {
			res, isIndex, err := copyIndex(ctx, a, t, src, ro)
			if isIndex {
				r.err, r.layers, r.bytes = err, int(res.layers), res.bytes
				r.verified, r.verifyErrors = err == nil && (a.g.Verify || a.g.VerifyFull), res.problems
				if err != nil {
					log.Error().Err(err).Msg("Image failed")
				}
				return after
			}
			if err != nil {
				r.err = err
				return after
			}
		}
	}
	stages, err := buildFilters(facs, img)
	if err != nil {
		r.err = err
		return after
	}
	sink, err := out.Sink(img)
	if err != nil {
		r.err = err
		return after
	}
	rep, err := runImage(ctx, a, im, src, stages, sink)
	if err != nil {
		log.Error().Err(redact.Error(err)).Msg("Image failed")
		r.err = err
		return after
	}
	f := im.Figures()
	r.layers, r.bytes, r.moved, r.digest = int(f.Layers), f.Size, f.Bytes, f.Digest
	stagesEvent(log.Info().Int64("layers", f.Layers).Int64("bytes", f.Size).Int64("bytes_moved", f.Bytes).Int64("elapsed_ms", f.Elapsed.Milliseconds()), rep).
		Msg("Processing complete")
	v, ok := out.(stage.Verifier)
	if !ok || !(a.g.Verify || a.g.VerifyFull) {
		return after
	}
	closeOnly := after // the named result is reassigned by the return below
	return func(ctx context.Context) {
		defer closeOnly(ctx)
		problems, err := v.Verify(log.WithContext(ctx), img, a.g.VerifyFull)
		if err != nil {
			log.Warn().Err(err).Msg("Verification failed")
			return
		}
		r.verified = true
		r.verifyErrors = problems
	}
}

// aheadImages is how many images beyond the -J being processed a
// multi-image run fetches ahead.
func aheadImages(jobs int) int { return 8 * jobs }

// aheadBytes bounds the compressed size of the layers fetched ahead and
// not yet processed (their temporary files hold about three times that).
const aheadBytes = 256 << 20

// aheadSlots is how many layers are downloaded ahead at once: as many as
// the -J images being processed download.
func aheadSlots(parallel, jobs int) int { return max(parallel, 1) * jobs }

// sourceOptions are the registry source options of one image of the run.
func sourceOptions(a *app, spec quay.Spec, ref quay.Ref, blobs *registry.Blobs) registry.Options {
	return registry.Options{
		Host: ref.Host, Repo: ref.Repo, Tag: ref.Tag,
		OS: a.g.OS, Architecture: a.g.Architecture, Variant: a.g.Variant,
		Workers: a.g.Parallel, TempDir: a.g.TempDir, Blobs: blobs, Inflate: a.chosenInflater(),
		Registry: transport.RegistryOptions{Insecure: spec.Insecure},
	}
}

// multiDestination is the destination of one image of a multi-image run
// whose destination names a place rather than an image: each image keeps its
// own repository name (the name within the Quay namespace) and tag.
//
//	registry://HOST[/PREFIX][?opts] -> registry://HOST[/PREFIX]/<repo>:<tag>[?opts]
//	docker://[PREFIX][?opts]        -> docker://[PREFIX/]<repo>:<tag>[?opts]
func multiDestination(dest string, ref quay.Ref) (string, error) {
	u, err := uri.ParseOutput(dest)
	if err != nil {
		return "", usage(err)
	}
	base, query, hasQuery := strings.Cut(dest, "?")
	_, rest, _ := strings.Cut(base, ":")
	rest = strings.TrimPrefix(rest, "//")
	rest = strings.TrimRight(rest, "/")
	last := rest[strings.LastIndex(rest, "/")+1:]
	tagged := strings.Contains(rest, "@") || strings.Contains(last, ":") && (u.Scheme == "docker" || strings.Contains(rest, "/"))
	if tagged && (u.Scheme == "registry" || u.Scheme == "docker") {
		return "", fmt.Errorf("%s:// destination %q for a multi-image source names a place, not an image: give %s without a tag", u.Scheme, dest, map[string]string{"registry": "HOST[/PREFIX]", "docker": "[PREFIX]"}[u.Scheme])
	}
	name := ref.Name() + ":" + ref.Tag
	switch u.Scheme {
	case "registry":
		if rest == "" {
			return "", fmt.Errorf("registry:// destination %q needs a host", dest)
		}
	case "docker":
	default:
		return dest, nil
	}
	if rest != "" {
		name = rest + "/" + name
	}
	out := u.Scheme + "://" + name
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}
