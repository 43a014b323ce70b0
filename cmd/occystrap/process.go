package main

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/progress"
)

// ProcessCmd is `occystrap process SOURCE DESTINATION [-f FILTER]...`.
type ProcessCmd struct {
	Source      string   `arg:"" name:"source" help:"Input URI: tar://PATH, registry://HOST/IMAGE[:TAG], ..."`
	Destination string   `arg:"" name:"destination" help:"Output URI: dir://PATH, tar://PATH, ..."`
	Filter      []string `short:"f" sep:"none" placeholder:"SPEC" help:"Filter, name[:key=value,...]; repeatable, the first given is applied first."`
	DryRun      bool     `name:"dry-run" help:"Print the images that would be copied and the compressed bytes their layers would take to fetch (shared layers once), and write nothing (registry:// and quay:// sources)."`
	Shard       string   `placeholder:"K/N" help:"Process only shard K of N of a multi-image source (default: $JOB_COMPLETION_INDEX/$OCCYSTRAP_SHARDS when both are set)."`
	Plan        string   `type:"existingfile" completion:"file" placeholder:"FILE" help:"With --shard: the plan written by occystrap plan --out (default: plan now)."`
	DigestFile  string   `name:"digest-file" type:"path" completion:"file" placeholder:"FILE" help:"Also write the digest of what was written (the manifest's for registry output, else the config's) to FILE."`

	// input, when set, is the opened source to use instead of Source (a
	// legacy command reading what no URI names: recreate-image).
	input stage.Input
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
			return usage(err)
		}
	}
	if c.input == nil && isMulti(c.Source) {
		return c.runMulti(ctx, a)
	}
	if c.Shard != "" || c.Plan != "" { // not the Job environment: a single image in a sharded Job runs whole
		return usageErrorf("--shard and --plan need a multi-image source (quay://NAMESPACE/GLOB:TAG), not %s", redact.URI(c.Source))
	}
	log := zerolog.Ctx(ctx)
	start := time.Now()

	a.filterSpecs = c.Filter
	filterFacs, err := makeFilters(ctx, a, c.Filter)
	if err != nil {
		return err
	}
	// Opening checks both ends (URI options, a tar:// destination that
	// cannot be written) and downloads nothing: a run refused for either
	// reason leaves nothing behind and has fetched no layer.
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
	run := accounting.NewRun()
	run.SetTotal(1)
	im := run.Image(img.String())
	stop := startProgress(ctx, a, run)
	rep, err := runImage(ctx, a, im, src, stages, sink)
	stop()
	if err != nil {
		return err
	}
	f := im.Figures()
	progress.StagesEvent(log.Info().Str("image", img.String()).Int64("layers", f.Layers).Int64("bytes", f.Size).Int64("bytes_moved", f.Bytes).
		Int64("elapsed_ms", f.Elapsed.Milliseconds()), rep).Msg("Processing complete")

	sum := withNetwork(a, progress.Summary{Layers: f.Layers, Bytes: f.Size, Moved: f.Bytes, Digest: f.Digest})
	if st, ok := a.transportStats(); ok {
		log.Debug().Int64("requests", st.Requests).Int64("retries", st.Retries).Int64("rate_limited", st.RateLimited).
			Int64("rate_limit_waits", st.RateLimitWaits).Int64("connections", st.Connections).Int64("tls_handshakes", st.TLSHandshakes).
			Int64("resumes", st.Resumes).Int64("bytes_in", st.BytesIn).Int64("bytes_out", st.BytesOut).
			Int64("blob_uploads", st.BlobUploads).Int64("blob_mounts", st.BlobMounts).Int64("blobs_existing", st.BlobsExisting).
			Int64("upload_resumes", st.UploadResumes).Msg("Network")
	}
	if a.g.Verify || a.g.VerifyFull {
		if v, ok := out.(stage.Verifier); ok {
			problems, err := v.Verify(ctx, img, a.g.VerifyFull)
			if err != nil {
				log.Warn().Err(err).Msg("Verification failed")
			} else {
				sum.Verified = true
				sum.VerifyErrors = len(problems)
				for _, p := range problems {
					log.Error().Str("image", img.String()).Str("problem", p).Msg("Verify error")
				}
			}
		}
	}
	sum.Elapsed = time.Since(start)
	sum.Emit(a.out.printer)
	if err := progress.WriteDigests(a.stdout, c.DigestFile, sum.Digest, nil); err != nil {
		return err
	}
	if sum.VerifyErrors > 0 {
		return errors.New("verification found problems with the output")
	}
	return nil
}
