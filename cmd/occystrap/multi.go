package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/internal/shard"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/sources/quay"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/progress"
	"github.com/occystrap/occystrap/stage/schedule"
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
		//lint:ignore ST1005 the original occystrap's exact message, which users grep for
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
	var shared *sharedOutput // nil when each image gets its own output
	if !perImage {
		shared = &sharedOutput{dest: c.Destination}
		defer shared.close()
	}
	// Into a registry, a copy that changes nothing opens each image's
	// output while the image is fetched ahead, and puts the image's blobs
	// there then (Output.HeadAhead: HEADs, a copy of what the image alone
	// brings, mounts of the rest once pushed): the image's turn is left
	// with its manifest. Not with a layer cache, which each output reads
	// when opened and writes when closed, in image order. The
	// destination's connection is set up while the source is listed.
	var early *earlyOutputs
	if du.Scheme == "registry" && len(c.Filter) == 0 && a.g.LayerCache == "" && !a.g.AllPlatforms {
		early = &earlyOutputs{m: map[quay.Ref]stage.Output{}, seen: map[digest.Digest]bool{}}
		defer early.closeAll()
		warm := pool.New()
		wctx, stopWarm := context.WithCancel(ctx)
		defer warm.Wait()
		defer stopWarm() // a run that ends first does not wait for the ping
		warm.Go(func() { pingDestination(wctx, a, t, c.Destination, spec) })
	}
	run := accounting.NewRun()
	blobs := registrysrc.NewBlobs()
	slots := registrysrc.NewSlots(aheadSlots(a.g.Parallel, jobs))
	ahead := registrysink.NewAhead(slots)
	budget := registrysrc.NewBudget(aheadBytes)
	s := schedule.New[quay.Ref, progress.Outcome](ctx, schedule.Options[quay.Ref]{
		Jobs: jobs, Ahead: aheadImages(jobs),
		Prepare: func(ctx context.Context, _ int, ref quay.Ref, ready func()) func() {
			// What is fetched ahead counts as the image's.
			ctx = accounting.WithImage(ctx, run.Image(ref.String()))
			po := registrysrc.PrefetchOptions{
				Layers: shared.output() != nil, Has: shared.has, Resolved: ready, Slots: slots, Budget: budget,
			}
			if ro := early.open(ctx, a, c.Destination, ref); ro != nil {
				po.Manifest = func(ctx context.Context, m v1.Manifest, open func(v1.Descriptor) transport.Opener) {
					descs := append([]v1.Descriptor{m.Config}, m.Layers...)
					first := early.firstSeen(descs)
					// A blob no image before this one has is this
					// image's to upload: it is copied ahead too, in the
					// slots of the downloads ahead. What earlier images
					// have is mounted once they have pushed it.
					ro.HeadAhead(ctx, descs, func(d v1.Descriptor) transport.Opener {
						if !first[d.Digest] {
							return nil
						}
						return open(d)
					}, ahead)
				}
			}
			pf := blobs.Prefetch(ctx, t, sourceOptions(a, spec, ref, blobs), po)
			return func() {
				pf.Release()
				early.drop(ref) // the image did not take it: it did not run
			}
		},
	})
	defer s.Close() // before the output is closed

	resolveStart := time.Now()
	list := func(ctx context.Context, found func(quay.Ref)) error {
		_, err := quay.ResolveFunc(ctx, t.Quay(spec.Host, transport.QuayOptions{Insecure: spec.Insecure, Token: spec.Token}), spec, a.tagChecks(), found)
		return err
	}
	if sh := shardArg(c.Shard); sh != "" {
		// A shard: its images are known only once every image's manifest
		// is, so resolution runs whole first.
		mine, err := shardRefs(ctx, a, c.Source, sh, c.Plan)
		if err != nil {
			return err
		}
		log.Info().Str("event", "shard").Str("shard", sh).Int("images", len(mine)).Msg("Processing one shard")
		list = func(_ context.Context, found func(quay.Ref)) error {
			for _, r := range mine {
				found(r)
			}
			return nil
		}
	}
	refs, err := s.List(ctx, func(ctx context.Context, found func(quay.Ref)) error {
		return list(ctx, func(ref quay.Ref) {
			// One output for all images, unless each gets its own name.
			if shared.open(ctx, a) == nil {
				found(ref)
			}
		})
	})
	if err != nil {
		return err
	}
	if err := shared.err(); err != nil {
		return err
	}
	log.Debug().Dur("elapsed_ms", time.Since(resolveStart)).Int("images", len(refs)).Msg("Resolution complete")
	if len(refs) == 0 {
		a.out.printer.Status("No images found", "No images found matching "+redact.URI(c.Source), func(e *zerolog.Event) {
			e.Str("source", redact.URI(c.Source)).Str("text", "No images found matching "+redact.URI(c.Source))
		})
		return nil
	}
	a.out.printer.Status("Processing images", fmt.Sprintf("Processing %d images (%d parallel)...", len(refs), jobs), func(e *zerolog.Event) {
		e.Int("images", len(refs)).Int("parallel", jobs)
	})

	run.SetTotal(len(refs))
	stopProgress := startProgress(ctx, a, run)
	done := 0
	results, _ := s.Run(ctx, schedule.Task[quay.Ref, progress.Outcome]{ // tasks report through their results
		Run: func(ctx context.Context, _ int, ref quay.Ref) (progress.Outcome, func(context.Context) progress.Outcome, error) {
			out := shared.output()
			if o := early.take(ref); o != nil {
				out = o
			}
			r, then := c.processImage(ctx, a, t, spec, ref, out, out != shared.output(), c.Destination, filterFacs, blobs, run.Image(ref.String()))
			return r, then, nil
		},
		NotRun: func(_ int, ref quay.Ref, err error) progress.Outcome {
			run.Image(ref.String()).Finish(err)
			return progress.Outcome{Image: ref.String(), Err: err}
		},
		// One call at a time, as images finish: the [k/N] lines in order.
		Done: func(_ int, ref quay.Ref, r progress.Outcome) {
			if r.Err != nil {
				return
			}
			done++
			a.out.printer.Status("Image complete", fmt.Sprintf("[%d/%d] %s", done, len(refs), ref), func(e *zerolog.Event) {
				e.Str("image", ref.String()).Int("images_done", done).Int("images_total", len(refs))
			})
		},
	})
	stopProgress()

	sum := progress.Tally(results)
	sum.Elapsed = time.Since(start)
	if st, ok := a.transportStats(); ok {
		sum.Retries, sum.RateLimits = st.Retries, st.RateLimited
		log.Debug().Int64("requests", st.Requests).Int64("retries", st.Retries).Int64("rate_limited", st.RateLimited).
			Int64("connections", st.Connections).Int64("bytes_in", st.BytesIn).Msg("Network")
	}
	bs := blobs.Stats()
	log.Info().Int64("layers_fetched", bs.Fetched).Int64("layers_shared", bs.Shared).Int64("layers_skipped", bs.Skipped).Msg("Layer transfers")
	sum.Emit(a.out.printer)
	if err := progress.WriteDigests(a.stdout, c.DigestFile, "", sum.Outcomes); err != nil {
		return err
	}
	sum.PrintProblems(a.out.printer)
	if err := ctx.Err(); err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d images failed: %w", sum.Failed, len(refs), errImagesFailed)
	}
	if sum.VerifyErrors > 0 {
		return errors.New("verification found problems with the output")
	}
	return nil
}

// processImage runs one image into out (or, when out is nil, into the
// output dest names for this image) and returns what it came to and what
// is left to do once the image is written: verify it (when asked) and
// close its own output, which returns the image's final result. The
// scheduler runs that outside the image's -J slot, so that the
// verification's round trips overlap the next image's.
func (c *ProcessCmd) processImage(ctx context.Context, a *app, t *transport.Transport, spec quay.Spec, ref quay.Ref,
	out stage.Output, own bool, dest string, facs []filterFactory, blobs *registrysrc.Blobs, im *accounting.Image) (progress.Outcome, func(context.Context) progress.Outcome) {
	r := progress.Outcome{Image: ref.String()}
	var closeOut func()
	if own { // opened for this image ahead of its turn: it closes it
		closeOut = func() { out.Close() }
	}
	// finish is the result r and an after that only closes the output.
	finish := func(r progress.Outcome) (progress.Outcome, func(context.Context) progress.Outcome) {
		return r, func(context.Context) progress.Outcome {
			if closeOut != nil {
				closeOut()
			}
			return r
		}
	}
	log := zerolog.Ctx(ctx).With().Str("image", ref.String()).Logger()
	ctx = log.WithContext(ctx)
	if out == nil {
		d, err := multiDestination(dest, ref)
		if err != nil {
			r.Err = err
			return finish(r)
		}
		o, _, err := openOutput(ctx, a, d)
		if err != nil {
			r.Err = err
			return finish(r)
		}
		closeOut = func() { o.Close() }
		out = o
	}
	src := registrysrc.New(t, sourceOptions(a, spec, ref, blobs))
	defer src.Close()
	img := src.Image()
	if a.g.AllPlatforms {
		if ro, ok := out.(*registrysink.Output); ok {
			res, isIndex, err := copyIndex(ctx, a, t, src, ro)
			if isIndex {
				r.Err, r.Layers, r.Bytes = err, res.layers, res.bytes
				r.Verified, r.VerifyErrors = err == nil && (a.g.Verify || a.g.VerifyFull), res.problems
				if err != nil {
					log.Error().Err(err).Msg("Image failed")
				}
				return finish(r)
			}
			if err != nil {
				r.Err = err
				return finish(r)
			}
		}
	}
	stages, err := buildFilters(facs, img)
	if err != nil {
		r.Err = err
		return finish(r)
	}
	sink, err := out.Sink(img)
	if err != nil {
		r.Err = err
		return finish(r)
	}
	rep, err := runImage(ctx, a, im, src, stages, sink)
	if err != nil {
		log.Error().Err(redact.Error(err)).Msg("Image failed")
		r.Err = err
		return finish(r)
	}
	f := im.Figures()
	r.Layers, r.Bytes, r.Moved, r.Digest = f.Layers, f.Size, f.Bytes, f.Digest
	progress.StagesEvent(log.Info().Int64("layers", f.Layers).Int64("bytes", f.Size).Int64("bytes_moved", f.Bytes).Int64("elapsed_ms", f.Elapsed.Milliseconds()), rep).
		Msg("Processing complete")
	v, ok := out.(stage.Verifier)
	if !ok || !(a.g.Verify || a.g.VerifyFull) {
		return finish(r)
	}
	return r, func(ctx context.Context) progress.Outcome {
		if closeOut != nil {
			defer closeOut()
		}
		problems, err := v.Verify(log.WithContext(ctx), img, a.g.VerifyFull)
		if err != nil {
			log.Warn().Err(err).Msg("Verification failed")
			return r
		}
		r.Verified = true
		r.VerifyErrors = problems
		return r
	}
}

// pingDestination pings the registry a multi-image run's registry://
// destination names (unless a sink of the run has). A destination that
// does not parse is left to the images, which report why.
func pingDestination(ctx context.Context, a *app, t *transport.Transport, dest string, spec quay.Spec) {
	d, err := multiDestination(dest, quay.Ref{Repo: spec.Namespace + "/ping", Tag: "latest"})
	if err != nil {
		return
	}
	u, err := uri.ParseOutput(d)
	if err != nil {
		return
	}
	ref, err := u.Reference()
	if err != nil {
		return
	}
	ro, _, err := registryAccess(a, u)
	if err != nil {
		return
	}
	a.pushedSet().PingFirst(ctx, t.Registry(ref.Host, ro), ref.Host)
}

// earlyOutputs are the registry outputs of the images fetched ahead,
// opened then so that their HEADs go out early, until each image takes its
// own. Every method of a nil *earlyOutputs does nothing.
type earlyOutputs struct {
	mu   sync.Mutex
	m    map[quay.Ref]stage.Output
	seen map[digest.Digest]bool // the blobs of the manifests fetched so far
}

// firstSeen returns which of descs no manifest fetched before had, and
// records them all.
func (e *earlyOutputs) firstSeen(descs []v1.Descriptor) map[digest.Digest]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	first := map[digest.Digest]bool{}
	for _, d := range descs {
		if !e.seen[d.Digest] {
			first[d.Digest] = true
			e.seen[d.Digest] = true
		}
	}
	return first
}

// open opens ref's output (dest made the image's own, as processImage
// does) and keeps it for take; it returns it when it is a registry output.
// An output that does not open is left to processImage, which reports why.
func (e *earlyOutputs) open(ctx context.Context, a *app, dest string, ref quay.Ref) *registrysink.Output {
	if e == nil {
		return nil
	}
	d, err := multiDestination(dest, ref)
	if err != nil {
		return nil
	}
	o, _, err := openOutput(ctx, a, d)
	if err != nil {
		return nil
	}
	e.mu.Lock()
	if old := e.m[ref]; old != nil {
		old.Close()
	}
	e.m[ref] = o
	e.mu.Unlock()
	ro, _ := o.(*registrysink.Output)
	return ro
}

// take hands ref's output over to its image (nil if there is none).
func (e *earlyOutputs) take(ref quay.Ref) stage.Output {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.m[ref]
	delete(e.m, ref)
	return o
}

// drop closes ref's output if its image never took it.
func (e *earlyOutputs) drop(ref quay.Ref) {
	if o := e.take(ref); o != nil {
		o.Close()
	}
}

// closeAll closes what is left.
func (e *earlyOutputs) closeAll() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ref, o := range e.m {
		o.Close()
		delete(e.m, ref)
	}
}

// sharedOutput is the one output of a multi-image run whose images do not
// each get their own, opened when the first image is found. Its methods
// are called from the resolution (open) and after it; every method of a
// nil *sharedOutput reports no output.
type sharedOutput struct {
	dest    string
	out     stage.Output
	hasFunc func(string) bool
	openErr error
}

// open opens the output, once; it returns the error opening it gave.
func (o *sharedOutput) open(ctx context.Context, a *app) error {
	if o == nil {
		return nil
	}
	if o.out == nil && o.openErr == nil {
		if o.out, _, o.openErr = openOutput(ctx, a, o.dest); o.openErr == nil {
			if h, ok := o.out.(interface{ Has(name string) bool }); ok {
				o.hasFunc = h.Has
			}
		}
	}
	return o.openErr
}

// output is the opened output, or nil.
func (o *sharedOutput) output() stage.Output {
	if o == nil {
		return nil
	}
	return o.out
}

// has reports whether the output has the layer name (false when it cannot
// tell).
func (o *sharedOutput) has(name string) bool {
	return o != nil && o.hasFunc != nil && o.hasFunc(name)
}

func (o *sharedOutput) err() error {
	if o == nil {
		return nil
	}
	return o.openErr
}

func (o *sharedOutput) close() {
	if o != nil && o.out != nil {
		o.out.Close()
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
func sourceOptions(a *app, spec quay.Spec, ref quay.Ref, blobs *registrysrc.Blobs) registrysrc.Options {
	return registrysrc.Options{
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

// tagChecks is how many Quay tag checks a resolution runs at once: -j × -J,
// the requests a multi-image run has in flight anyway while it copies. The
// original ran them -j at a time; each is one small API request, so at
// -j 4 the 50 images of a release took 13 round trips in sequence before
// the last image was known (docs/performance.md). --rate-limit and the
// adaptive limit govern them as they do every other request.
func (a *app) tagChecks() int { return max(a.g.Parallel, 1) * max(a.g.ImageParallel, 1) }
