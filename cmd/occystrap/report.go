package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/progress"
)

// What a process run reports: progress while it runs, from the run's
// accounting (internal/accounting), and the summary and digests at the end.

// startProgress reports run's progress until the returned stop is called:
// a live line on a terminal in console mode, else a progress event every
// --progress-interval.
func startProgress(ctx context.Context, a *app, run *accounting.Run) (stop func()) {
	if a.g.Quiet {
		return func() {}
	}
	o := progress.Options{Live: a.out.line != nil, Line: a.out.line, Interval: a.g.ProgressInterval}
	if a.g.RateLimit.auto || a.g.RateLimit.perSecond > 0 {
		o.RateLimit = func() float64 {
			st, _ := a.transportStats()
			return st.RateLimit
		}
	}
	rep := progress.New(run, a.out.log, o)
	pctx, cancel := context.WithCancel(ctx)
	bg := pool.New().WithContext(pctx)
	bg.Go(func(ctx context.Context) error { rep.Run(ctx); return nil })
	return func() {
		cancel()
		_ = bg.Wait()
		rep.Clear()
	}
}

// accountStage is the last stage before the sink: it counts the layers
// the sink gets, the bytes of sources that do not count their own, and the
// digest of the config the sink gets. It passes every item on unchanged.
type accountStage struct{ im *accounting.Image }

func (s *accountStage) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "account"}
}

func (s *accountStage) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	for it := range in {
		switch it.Kind {
		case stage.KindLayer:
			s.im.Layer()
			if !s.im.SourceFed() && it.Size > 0 {
				s.im.AddSize(it.Size)
				if it.Body != nil {
					s.im.Expect(it.Size)
					s.im.Add(it.Size)
				}
			}
		case stage.KindConfig:
			s.im.SetConfigDigest(digest.FromBytes(it.Data).String())
		}
		if err := stage.Send(ctx, out, it); err != nil {
			for it := range in {
				_ = it.Release()
			}
			return err
		}
	}
	return nil
}

// runImage runs one image's pipeline with its accounting im in the context
// (the stages feed it) and the accounting stage last.
func runImage(ctx context.Context, a *app, im *accounting.Image, src stage.Source, stages []stage.Stage, sink stage.Sink) (*stage.Report, error) {
	ctx = accounting.WithImage(ctx, im)
	stages = append(stages, &accountStage{im: im})
	im.Start()
	rep, err := stage.Run(ctx, src, stages, sink, stage.Options{Window: 2 * max(a.g.Parallel, 1), Buffer: max(a.g.Parallel, 1)})
	im.Finish(err)
	return rep, err
}

// stagesEvent adds each component's figures as an array of objects.
func stagesEvent(e *zerolog.Event, rep *stage.Report) *zerolog.Event {
	arr := zerolog.Arr()
	for _, s := range rep.Stages {
		arr = arr.Dict(zerolog.Dict().Str("stage", s.Name).Int64("items", s.Items).Int64("layers", s.Layers).
			Int64("elapsed_ms", s.Elapsed.Milliseconds()))
	}
	return e.Array("stages", arr)
}

// imageOutcome is one image's line in the summary.
type imageOutcome struct {
	Image        string
	Layers       int64
	Bytes        int64
	Moved        int64
	Digest       string
	Err          error
	VerifyErrors []string
}

// summary is the end of a process run: the `Summary:` line in console mode
// (`Summary: [S/N images, ]L layers, <size>, X.Xs[, R retries][, K rate
// limits][, F failed][, verified OK|, E verify errors]`), the summary event
// in JSON mode.
type summary struct {
	multi               bool
	images, totalImages int
	layers              int64
	bytes               int64 // the images' layers as their sources store them
	moved               int64 // bytes read from the sources
	elapsed             time.Duration
	retries, rateLimits int64
	failed              int
	verified            bool
	verifyErrors        int
	digest              string // one image
	outcomes            []imageOutcome
}

func (s summary) String() string {
	var b strings.Builder
	b.WriteString("Summary: ")
	if s.multi {
		fmt.Fprintf(&b, "%d/%d images, ", s.images, s.totalImages)
	}
	fmt.Fprintf(&b, "%d layers, %s, %.1fs", s.layers, progress.Size(s.bytes), s.elapsed.Seconds())
	if s.retries > 0 {
		fmt.Fprintf(&b, ", %d retries", s.retries)
	}
	if s.rateLimits > 0 {
		fmt.Fprintf(&b, ", %d rate limits", s.rateLimits)
	}
	if s.failed > 0 {
		fmt.Fprintf(&b, ", %d failed", s.failed)
	}
	if s.verified {
		if s.verifyErrors == 0 {
			b.WriteString(", verified OK")
		} else {
			fmt.Fprintf(&b, ", %d verify errors", s.verifyErrors)
		}
	}
	return b.String()
}

// emit writes the summary: the line, or the event with every counter.
func (s summary) emit(a *app) {
	a.out.printer.Status("Summary", s.String(), func(e *zerolog.Event) {
		if s.multi {
			e.Int("images_done", s.images).Int("images_total", s.totalImages).Int("images_failed", s.failed)
		}
		e.Int64("layers", s.layers).Int64("bytes", s.bytes).Int64("bytes_moved", s.moved).Int64("elapsed_ms", s.elapsed.Milliseconds()).
			Int64("retries", s.retries).Int64("rate_limits", s.rateLimits).Bool("verified", s.verified).
			Int("verify_errors", s.verifyErrors)
		if s.digest != "" {
			e.Str("digest", s.digest)
		}
		if s.multi {
			arr := zerolog.Arr()
			for _, o := range s.outcomes {
				d := zerolog.Dict().Str("image", o.Image).Int64("layers", o.Layers).Int64("bytes", o.Bytes).Int64("bytes_moved", o.Moved)
				if o.Digest != "" {
					d = d.Str("digest", o.Digest)
				}
				if o.Err != nil {
					d = d.Str("error", o.Err.Error())
				}
				if len(o.VerifyErrors) > 0 {
					d = d.Strs("verify_errors", o.VerifyErrors)
				}
				arr = arr.Dict(d)
			}
			e.Array("images", arr)
		}
		e.Str("text", s.String())
	})
}

// writeDigests prints the digests of what was written on stdout (one
// image: the digest; many: `IMAGE DIGEST` lines) and, with --digest-file,
// writes the same to that file (one image: the digest alone, as skopeo's
// --digestfile).
func writeDigests(a *app, file string, one string, outcomes []imageOutcome) error {
	var text string
	if outcomes == nil {
		if one == "" {
			return nil
		}
		text = one
	} else {
		var b strings.Builder
		for _, o := range outcomes {
			if o.Err == nil && o.Digest != "" {
				fmt.Fprintf(&b, "%s %s\n", o.Image, o.Digest)
			}
		}
		text = strings.TrimSuffix(b.String(), "\n")
		if text == "" {
			return nil
		}
	}
	fmt.Fprintln(a.stdout, text)
	if file == "" {
		return nil
	}
	if outcomes != nil {
		text += "\n"
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return fmt.Errorf("--digest-file: %w", err)
	}
	return nil
}

// formatSize is the original's format_size (progress.Size).
func formatSize(n int64) string { return progress.Size(n) }
