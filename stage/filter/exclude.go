package filter

import (
	"strings"

	"github.com/occystrap/occystrap/internal/fnmatch"
	"github.com/occystrap/occystrap/internal/tarfmt"
)

// NewExclude returns the exclude filter: it drops every member whose name
// matches one of patterns (Python fnmatch: `*` crosses `/`), and rewrites
// the layer otherwise unchanged (times and kept PAX records as they were).
func NewExclude(patterns []string, opts Options) *Rewriter {
	ps := make([]*fnmatch.Pattern, 0, len(patterns))
	for _, p := range patterns {
		ps = append(ps, fnmatch.Compile(p))
	}
	return NewRewriter("exclude", func(m *tarfmt.Member) bool {
		for _, p := range ps {
			if p.Match(m.Name) {
				return false
			}
		}
		return true
	}, opts)
}

// SplitPatterns splits an exclude pattern option at commas (the spec's
// `exclude:pattern=a,b,c`), dropping empty pieces.
func SplitPatterns(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
