package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() {
	filters["exclude"] = makeExclude
	filters["normalize-timestamps"] = makeNormalize
	filters["search"] = makeSearch
	filters["inspect"] = makeInspect
}

// checkOptions refuses options the filter does not know, naming them.
func checkOptions(f uri.Filter, known ...string) error {
	if bad := f.Unknown(known...); len(bad) > 0 {
		return fmt.Errorf("unknown option(s) %s for filter %s; known options: %s",
			strings.Join(bad, ", "), f.Name, strings.Join(known, ", "))
	}
	return nil
}

func rewriteOptions(a *app) filter.Options {
	return filter.Options{TempDir: a.g.TempDir, Parallel: max(a.g.Parallel, 1)}
}

func makeExclude(_ context.Context, a *app, f uri.Filter) (filterFactory, error) {
	if err := checkOptions(f, "pattern"); err != nil {
		return nil, err
	}
	s, _ := f.String("pattern")
	patterns := filter.SplitPatterns(s)
	if len(patterns) == 0 {
		return nil, fmt.Errorf("filter exclude needs pattern=GLOB[,GLOB...]")
	}
	return func(stage.Image) (stage.Stage, error) {
		return filter.NewExclude(patterns, rewriteOptions(a)), nil
	}, nil
}

func makeNormalize(_ context.Context, a *app, f uri.Filter) (filterFactory, error) {
	if err := checkOptions(f, "ts", "timestamp"); err != nil {
		return nil, err
	}
	ts, err := f.Int("timestamp", 0)
	if err != nil {
		return nil, err
	}
	if ts, err = f.Int("ts", ts); err != nil {
		return nil, err
	}
	return func(stage.Image) (stage.Stage, error) {
		return filter.NewNormalizeTimestamps(int64(ts), rewriteOptions(a)), nil
	}, nil
}

func makeSearch(_ context.Context, a *app, f uri.Filter) (filterFactory, error) {
	if err := checkOptions(f, "pattern", "regex", "script_friendly", "script-friendly"); err != nil {
		return nil, err
	}
	pattern, ok := f.String("pattern")
	if !ok || pattern == "" {
		return nil, fmt.Errorf("filter search needs pattern=PATTERN")
	}
	regex, err := f.Bool("regex", false)
	if err != nil {
		return nil, err
	}
	script, err := f.Bool("script_friendly", false)
	if err != nil {
		return nil, err
	}
	if script, err = f.Bool("script-friendly", script); err != nil {
		return nil, err
	}
	opts := filter.SearchOptions{Pattern: pattern, Regex: regex, ScriptFriendly: script, Parallel: max(a.g.Parallel, 1)}
	// Check the pattern now, before anything runs.
	if _, err := filter.NewSearch(stage.Image{}, a.stdout, opts); err != nil {
		return nil, err
	}
	return func(img stage.Image) (stage.Stage, error) {
		return filter.NewSearch(img, a.stdout, opts)
	}, nil
}

func makeInspect(_ context.Context, a *app, f uri.Filter) (filterFactory, error) {
	if err := checkOptions(f, "file"); err != nil {
		return nil, err
	}
	path, ok := f.String("file")
	if !ok || path == "" {
		return nil, fmt.Errorf("filter inspect needs file=PATH")
	}
	return func(img stage.Image) (stage.Stage, error) {
		return filter.NewInspect(img, path, max(a.g.Parallel, 1)), nil
	}, nil
}

// changesContent reports whether any stage changes layer content: then the
// layers reaching the output are not the source's compressed blobs, and a
// registry output must compress them anew.
func changesContent(stages []stage.Stage) bool { return stage.ChangesContent(stages) }

// needsAllLayers reports whether any stage must read every layer, so the
// source must not skip layers the destination already has.
func needsAllLayers(stages []stage.Stage) bool {
	for _, s := range stages {
		if s.Properties().NeedsAllLayers {
			return true
		}
	}
	return false
}
