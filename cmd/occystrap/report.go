package main

import (
	"context"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/progress"
)

// What a process run reports: progress while it runs, from the run's
// accounting (internal/accounting), and the summary and digests at the end
// (package stage/progress renders them all).

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
	return progress.Start(ctx, run, a.out.log, o)
}

// runImage runs one image's pipeline with its accounting im in the context
// (the stages feed it) and the accounting stage last.
func runImage(ctx context.Context, a *app, im *accounting.Image, src stage.Source, stages []stage.Stage, sink stage.Sink) (*stage.Report, error) {
	ctx = accounting.WithImage(ctx, im)
	stages = append(stages, &progress.Account{Image: im})
	im.Start()
	rep, err := stage.Run(ctx, src, stages, sink, stage.Options{Window: 2 * max(a.g.Parallel, 1), Buffer: max(a.g.Parallel, 1)})
	im.Finish(err)
	return rep, err
}

// withNetwork adds the transport's retries and rate limits to sum.
func withNetwork(a *app, sum progress.Summary) progress.Summary {
	if st, ok := a.transportStats(); ok {
		sum.Retries, sum.RateLimits = st.Retries, st.RateLimited
	}
	return sum
}

// formatSize is the original's format_size (progress.Size).
func formatSize(n int64) string { return progress.Size(n) }
