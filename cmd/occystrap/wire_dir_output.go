package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/occystrap/occystrap/sinks/dir"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/uri"
)

func init() {
	outputs["dir"] = func(ctx context.Context, a *app, u uri.URI) (stage.Output, error) {
		if err := knownOptions(u, "unique_names", "expand"); err != nil {
			return nil, err
		}
		unique, err := u.Bool("unique_names", false)
		if err != nil {
			return nil, err
		}
		expand, err := u.Bool("expand", false)
		if err != nil {
			return nil, err
		}
		return dir.New(u.Path, dir.Options{
			UniqueNames: unique,
			Expand:      expand,
			Parallel:    a.g.Parallel,
			SameOwner:   os.Geteuid() == 0,
		})
	}
}

// knownOptions refuses query options the scheme does not take, naming them,
// so that a typo does not go unnoticed.
func knownOptions(u uri.URI, known ...string) error {
	var unknown []string
	for k := range u.Options {
		if !slices.Contains(known, k) {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	what := "option"
	if len(unknown) > 1 {
		what = "options"
	}
	k := "none"
	if len(known) > 0 {
		k = strings.Join(known, ", ")
	}
	return usage(fmt.Errorf("unknown %s %s for %s:// (known: %s)", what, strings.Join(unknown, ", "), u.Scheme, k))
}
