package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

// Each input, output and filter registers itself here from its own wire_*.go
// file, so that adding one touches no other file.

// An input opens as a stage.Input, an output as a stage.Output (a
// stage.Verifier when it can check what it wrote): the contract is in
// package stage.

type (
	inputOpener  func(ctx context.Context, a *app, u uri.URI) (stage.Input, error)
	outputOpener func(ctx context.Context, a *app, u uri.URI) (stage.Output, error)
	// filterMaker checks a filter spec (its options) before anything runs and
	// returns the factory that builds the filter for each image: a filter
	// stage holds one run's state.
	filterMaker   func(ctx context.Context, a *app, f uri.Filter) (filterFactory, error)
	filterFactory func(img stage.Image) (stage.Stage, error)
)

var (
	inputs  = map[string]inputOpener{}
	outputs = map[string]outputOpener{}
	filters = map[string]filterMaker{}
)

func openInput(ctx context.Context, a *app, s string) (stage.Input, uri.URI, error) {
	u, err := uri.ParseInput(s)
	if err != nil {
		return nil, u, usage(err)
	}
	open, ok := inputs[u.Scheme]
	if !ok {
		return nil, u, usageErrorf("input scheme %s:// (in %q) is not supported by this build; supported: %s", u.Scheme, redact.URI(s), keys(inputs))
	}
	// Every input that decompresses layers takes the run's inflater.
	if _, err := a.inflater(ctx); err != nil {
		return nil, u, err
	}
	src, err := open(ctx, a, u)
	return src, u, err
}

func openOutput(ctx context.Context, a *app, s string) (stage.Output, uri.URI, error) {
	u, err := uri.ParseOutput(s)
	if err != nil {
		return nil, u, usage(err)
	}
	open, ok := outputs[u.Scheme]
	if !ok {
		return nil, u, usageErrorf("output scheme %s:// (in %q) is not supported by this build; supported: %s", u.Scheme, redact.URI(s), keys(outputs))
	}
	out, err := open(ctx, a, u)
	return out, u, err
}

func makeFilters(ctx context.Context, a *app, specs []string) ([]filterFactory, error) {
	var out []filterFactory
	for _, s := range specs {
		f, err := uri.ParseFilter(s)
		if err != nil {
			return nil, usage(err)
		}
		mk, ok := filters[f.Name]
		if !ok {
			return nil, usageErrorf("unknown filter %q in -f %q; known filters: %s", f.Name, s, keys(filters))
		}
		fac, err := mk(ctx, a, f)
		if err != nil {
			return nil, usage(fmt.Errorf("filter %q: %w", s, err))
		}
		out = append(out, func(img stage.Image) (stage.Stage, error) {
			st, err := fac(img)
			if err != nil {
				return nil, fmt.Errorf("filter %q: %w", s, err)
			}
			return st, nil
		})
	}
	return out, nil
}

// buildFilters makes the filter stages of one image, first given first.
func buildFilters(facs []filterFactory, img stage.Image) ([]stage.Stage, error) {
	out := make([]stage.Stage, 0, len(facs))
	for _, fac := range facs {
		st, err := fac(img)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) == 0 {
		return "(none)"
	}
	return strings.Join(ks, ", ")
}
