package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
	"github.com/occystrap/occystrap/stage/uri"
)

// SearchCmd is `occystrap search SOURCE PATTERN [--regex] [--script-friendly]`.
type SearchCmd struct {
	Source         string `arg:"" name:"source" help:"Input URI: tar://PATH, registry://HOST/IMAGE[:TAG], docker://IMAGE[:TAG], ..."`
	Pattern        string `arg:"" name:"pattern" help:"Glob matched against each file's path or base name; a regular expression with --regex."`
	Regex          bool   `help:"PATTERN is a regular expression, searched for in each path."`
	ScriptFriendly bool   `name:"script-friendly" help:"Print image:tag:layer:path lines."`
	Separator      string `placeholder:"SEP" help:"Separate the script-friendly fields with SEP instead of ':' (\\t is a tab); implies --script-friendly."`
	Null           bool   `short:"z" help:"Separate the script-friendly fields and end each line with a NUL byte (xargs -0 -n4); implies --script-friendly."`
}

// Run searches every layer of the image, in parallel, and prints the
// matches in layer order. Nothing is written anywhere else.
func (c *SearchCmd) Run(ctx context.Context, a *app) error {
	if u, err := uri.ParseInput(c.Source); err == nil && u.Scheme == "quay" {
		return fmt.Errorf("search does not support quay:// sources")
	}
	opts := filter.SearchOptions{Pattern: c.Pattern, Regex: c.Regex, ScriptFriendly: c.ScriptFriendly, Parallel: max(a.g.Parallel, 1),
		JSON: a.g.OutputFormat == "json"}
	if c.Separator != "" {
		opts.ScriptFriendly = true
		opts.Separator = strings.NewReplacer(`\t`, "\t", `\0`, "\x00", `\n`, "\n").Replace(c.Separator)
	}
	if c.Null {
		if c.Separator != "" {
			return errors.New("--separator and -z/--null: give one")
		}
		opts.ScriptFriendly = true
		opts.Separator, opts.Terminator = "\x00", "\x00"
	}
	if opts.JSON && opts.ScriptFriendly {
		return errors.New("-O json and --script-friendly (or --separator, -z): give one")
	}
	if _, err := filter.NewSearch(stage.Image{}, a.stdout, opts); err != nil {
		return err
	}
	src, _, err := openInput(ctx, a, c.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	s, err := filter.NewSearch(src.Image(), a.stdout, opts)
	if err != nil {
		return err
	}
	_, err = stage.Run(ctx, src, []stage.Stage{s}, filter.Discard{}, stage.Options{Window: 2 * opts.Parallel, Buffer: opts.Parallel})
	return err
}
