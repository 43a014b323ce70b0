package uri

import (
	"fmt"
	"strings"
)

// Filter is a parsed filter spec, `name[:k=v,...]`.
type Filter struct {
	// Raw is the spec as given.
	Raw string
	// Name is lowercased with '_' turned into '-'.
	Name string
	// Options hold coerced values (see Coerce), in the order given by Keys.
	Options map[string]any
	Keys    []string
}

// ParseFilter parses a filter spec. Unlike the original, a comma-separated
// piece without '=' continues the previous option's value, so
// `exclude:pattern=a,b` means pattern "a,b" (the original raised "Invalid
// filter option (missing =)"). A piece without '=' before any option is still
// that error.
func ParseFilter(s string) (Filter, error) {
	f := Filter{Raw: s, Options: map[string]any{}}
	name, rest, hasOpts := strings.Cut(s, ":")
	name = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")
	if name == "" {
		return Filter{}, fmt.Errorf("invalid filter %q: missing filter name", s)
	}
	f.Name = name
	if !hasOpts || rest == "" {
		return f, nil
	}
	raw := map[string]string{}
	last := ""
	for _, piece := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(piece, "=")
		if !ok {
			if last == "" {
				//lint:ignore ST1005 the original occystrap's exact message, which users grep for
				return Filter{}, fmt.Errorf("Invalid filter option (missing =): %q in filter %q", piece, s)
			}
			raw[last] += "," + piece
			continue
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return Filter{}, fmt.Errorf("invalid filter %q: option %q has no name", s, piece)
		}
		if _, seen := raw[k]; !seen {
			f.Keys = append(f.Keys, k)
		}
		raw[k] = v
		last = k
	}
	for k, v := range raw {
		f.Options[k] = Coerce(v)
	}
	return f, nil
}

// String returns option key as text and whether it was given.
func (f Filter) String(key string) (string, bool) { return optString(f.Options, key) }

// Bool returns option key as a bool, def when absent.
func (f Filter) Bool(key string, def bool) (bool, error) {
	return optBool(f.Options, key, def, "option "+key+" of filter "+f.Name)
}

// Int returns option key as an int, def when absent.
func (f Filter) Int(key string, def int) (int, error) {
	return optInt(f.Options, key, def, "option "+key+" of filter "+f.Name)
}

// Unknown returns the option keys that are not in known, for an error that
// names them.
func (f Filter) Unknown(known ...string) []string {
	var bad []string
	for _, k := range f.Keys {
		ok := false
		for _, kn := range known {
			if k == kn {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	return bad
}
