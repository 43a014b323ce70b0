package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/stage"
)

// ProcessCmd is `occystrap process SOURCE DESTINATION [-f FILTER]...`.
type ProcessCmd struct {
	Source      string   `arg:"" name:"source" help:"Input URI: tar://PATH, registry://HOST/IMAGE[:TAG], ..."`
	Destination string   `arg:"" name:"destination" help:"Output URI: dir://PATH, tar://PATH, ..."`
	Filter      []string `short:"f" sep:"none" placeholder:"SPEC" help:"Filter, name[:key=value,...]; repeatable, the first given is applied first."`
	DryRun      bool     `name:"dry-run" help:"Print the images that would be copied and the compressed bytes their layers would take to fetch (shared layers once), and write nothing (registry:// and quay:// sources)."`
	Shard       string   `placeholder:"K/N" help:"Process only shard K of N of a multi-image source (default: $JOB_COMPLETION_INDEX/$OCCYSTRAP_SHARDS when both are set)."`
	Plan        string   `type:"existingfile" completion:"file" placeholder:"FILE" help:"With --shard: the plan written by occystrap plan --out (default: plan now)."`

	// input, when set, is the opened source to use instead of Source (a
	// legacy command reading what no URI names: recreate-image).
	input source
}

// Run processes one image.
func (c *ProcessCmd) Run(ctx context.Context, a *app) error {
	if c.DryRun {
		return c.dryRun(ctx, a)
	}
	all := false
	if c.input == nil { // a legacy command's own input is never a list
		var err error
		if all, err = allPlatforms(a, c.Source); err != nil {
			return err
		}
	}
	if all {
		if err := checkAllPlatforms(c.Source, c.Destination, c.Filter); err != nil {
			return err
		}
	}
	if c.input == nil && isMulti(c.Source) {
		return c.runMulti(ctx, a)
	}
	if c.Shard != "" || c.Plan != "" { // not the Job environment: a single image in a sharded Job runs whole
		return usageErrorf("--shard and --plan need a multi-image source (quay://NAMESPACE/GLOB:TAG), not %s", redactURI(c.Source))
	}
	log := zerolog.Ctx(ctx)
	start := time.Now()

	a.filterSpecs = c.Filter
	filterFacs, err := makeFilters(ctx, a, c.Filter)
	if err != nil {
		return err
	}
	src := c.input
	if src == nil {
		src, _, err = openInput(ctx, a, c.Source)
		if err != nil {
			return err
		}
	}
	defer src.Close()
	out, _, err := openOutput(ctx, a, c.Destination)
	if err != nil {
		return err
	}
	defer out.Close()
	if all {
		if done, err := c.runAllPlatforms(ctx, a, src, out, start); done {
			return err
		}
	}

	img := src.Image()
	stages, err := buildFilters(filterFacs, img)
	if err != nil {
		return err
	}
	sink, err := out.Sink(img)
	if err != nil {
		return err
	}
	log.Info().Str("image", img.String()).Str("source", redact.URI(c.Source)).Str("destination", redact.URI(c.Destination)).Msg("Processing image")
	rep, err := runWithProgress(ctx, a, img, src, stages, sink)
	if err != nil {
		return err
	}
	ev := log.Info().Str("image", img.String())
	for _, s := range rep.Stages {
		ev = ev.Dict(s.Name, zerolog.Dict().Int64("items", s.Items).Int64("layers", s.Layers).Int64("bytes", s.Bytes).Dur("elapsed", s.Elapsed))
	}
	ev.Msg("Processing complete")

	sum := summary{layers: int(rep.Stages[len(rep.Stages)-1].Layers), bytes: rep.Stages[0].Bytes}
	if st, ok := a.transportStats(); ok {
		sum.retries, sum.rateLimits = st.Retries, st.RateLimited
		log.Debug().Int64("requests", st.Requests).Int64("retries", st.Retries).Int64("rate_limited", st.RateLimited).
			Int64("rate_limit_waits", st.RateLimitWaits).Int64("connections", st.Connections).Int64("tls_handshakes", st.TLSHandshakes).
			Int64("resumes", st.Resumes).Int64("bytes_in", st.BytesIn).Int64("bytes_out", st.BytesOut).
			Int64("blob_uploads", st.BlobUploads).Int64("blob_mounts", st.BlobMounts).Int64("blobs_existing", st.BlobsExisting).
			Int64("upload_resumes", st.UploadResumes).Msg("Network")
	}
	if a.g.Verify || a.g.VerifyFull {
		if v, ok := out.(verifier); ok {
			problems, err := v.Verify(ctx, img, a.g.VerifyFull)
			if err != nil {
				log.Warn().Err(err).Msg("Verification failed")
			} else {
				sum.verified = true
				sum.verifyErrors = len(problems)
				for _, p := range problems {
					log.Error().Str("image", img.String()).Msg(p)
				}
			}
		}
	}
	sum.elapsed = time.Since(start)
	fmt.Fprintln(a.stderr, sum.String())
	if sum.verifyErrors > 0 {
		return errors.New("verification found problems with the output")
	}
	return nil
}

// summary is the last line of a run, on stderr:
// `Summary: [S/N images, ]L layers, <size>, X.Xs[, R retries][, K rate limits][, F failed][, verified OK|, E verify errors]`.
type summary struct {
	images, totalImages int
	layers              int
	bytes               int64
	elapsed             time.Duration
	retries, rateLimits int64
	failed              int
	verified            bool
	verifyErrors        int
}

func (s summary) String() string {
	var b strings.Builder
	b.WriteString("Summary: ")
	if s.totalImages > 0 {
		fmt.Fprintf(&b, "%d/%d images, ", s.images, s.totalImages)
	}
	fmt.Fprintf(&b, "%d layers, %s, %.1fs", s.layers, formatSize(s.bytes), s.elapsed.Seconds())
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

// formatSize is the original's format_size: bytes, or KB/MB/GB base 1024
// with one decimal; N/A for a negative size.
func formatSize(n int64) string {
	switch {
	case n < 0:
		return "N/A"
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1024*1024*1024))
}

// runWithProgress runs one image's pipeline while reporting its progress as
// a multi-image run does for each of its images: a live line on a terminal,
// a structured log event every 30 s otherwise, so a long pull is never
// silent. The counting stage passes every item on unchanged.
func runWithProgress(ctx context.Context, a *app, img stage.Image, src stage.Source, stages []stage.Stage, sink stage.Sink) (*stage.Report, error) {
	prog := newProgress(a.chatter(), 1)
	layers := prog.started(img.String())
	stages = append(stages, &layerCounter{n: layers})
	pctx, stop := context.WithCancel(ctx)
	bg := pool.New().WithContext(pctx)
	bg.Go(func(ctx context.Context) error { prog.run(ctx); return nil })
	rep, err := stage.Run(ctx, src, stages, sink, stage.Options{Window: 2 * max(a.g.Parallel, 1), Buffer: max(a.g.Parallel, 1)})
	stop()
	_ = bg.Wait()
	prog.clear()
	return rep, err
}
