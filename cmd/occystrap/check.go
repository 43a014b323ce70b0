package main

import (
	"context"
	"fmt"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
	"github.com/occystrap/occystrap/stage/imageinfo"
)

// CheckCmd is `occystrap check SOURCE [--fast]`.
type CheckCmd struct {
	Source string `arg:"" name:"source" help:"Input URI: registry://HOST/IMAGE[:TAG], docker://IMAGE[:TAG] or tar://PATH."`
	Fast   bool   `help:"Check the manifest and config only; read no layer."`
}

// Run checks the image and prints the results; errors found exit 1.
func (c *CheckCmd) Run(ctx context.Context, a *app) error {
	im, err := openImageMeta(ctx, a, c.Source)
	if err != nil {
		return err
	}
	defer im.close()
	results := imageinfo.CheckMetadata(im.meta)
	if !c.Fast {
		lc := imageinfo.NewLayerCheck(im.meta, a.g.Parallel)
		par := max(a.g.Parallel, 1)
		if _, err := stage.Run(ctx, im.full(ctx), []stage.Stage{lc}, filter.Discard{}, stage.Options{Window: 2 * par, Buffer: par}); err != nil {
			return err
		}
		results = append(results, lc.Results()...)
	}
	if a.g.OutputFormat == "json" {
		err = imageinfo.WriteJSON(a.stdout, imageinfo.CheckDocument(im.meta.Image, im.meta.Tag, results, c.Fast))
	} else {
		err = imageinfo.WriteCheckText(a.stdout, results, c.Fast)
	}
	if err != nil {
		return err
	}
	if results.Count(imageinfo.SeverityError) > 0 {
		return fmt.Errorf("check found errors: %w", errQuiet)
	}
	return nil
}
