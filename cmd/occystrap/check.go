package main

import (
	"context"
	"fmt"

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
	results, err := imageinfo.Check(ctx, im.meta, im.full, c.Fast, a.g.Parallel)
	if err != nil {
		return err
	}
	if err := imageinfo.WriteCheck(a.stdout, a.g.OutputFormat, im.meta, results, c.Fast); err != nil {
		return err
	}
	if results.Count(imageinfo.SeverityError) > 0 {
		return fmt.Errorf("check found errors: %w", errQuiet)
	}
	return nil
}
