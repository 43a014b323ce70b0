package uri

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/occystrap/occystrap/internal/redact"
)

// Input and output schemes, after aliases are applied.
var (
	InputSchemes  = []string{"registry", "quay", "docker", "dockerpush", "tar"}
	OutputSchemes = []string{"tar", "dir", "oci", "mounts", "docker", "registry"}
)

var aliases = map[string]string{"file": "tar", "directory": "dir"}

// fileLike schemes name a path on this machine; their host is part of it.
var fileLike = map[string]bool{"tar": true, "dir": true, "oci": true, "mounts": true}

// URI is a parsed source or destination.
type URI struct {
	// Raw is the text as given.
	Raw string
	// Scheme is lowercased, with aliases applied.
	Scheme string
	// Host is the authority (host[:port]) for network schemes; empty for
	// file-like schemes.
	Host string
	// Path is the file path for file-like schemes, and the rest after the
	// host, without its leading '/', for the others (for example
	// "library/busybox:latest").
	Path string
	// Options are the query options with their values coerced: bool, int,
	// string, or []any for a repeated key.
	Options map[string]any
}

// ParseInput parses a source URI.
func ParseInput(s string) (URI, error) { return parse(s, InputSchemes, "input") }

// ParseOutput parses a destination URI.
func ParseOutput(s string) (URI, error) { return parse(s, OutputSchemes, "output") }

func parse(s string, allowed []string, role string) (URI, error) {
	raw := s
	i := strings.Index(s, ":")
	if i <= 0 {
		return URI{}, fmt.Errorf("invalid %s URI %q: expected SCHEME://..., with scheme one of %s%s", role, redact.URI(raw), strings.Join(allowed, ", "), suggestion(raw))
	}
	scheme := strings.ToLower(s[:i])
	rest := s[i+1:]
	if !strings.HasPrefix(rest, "//") {
		rest = "//" + rest
	}
	if a, ok := aliases[scheme]; ok {
		scheme = a
	}
	if !slices.Contains(allowed, scheme) {
		return URI{}, fmt.Errorf("Unknown %s scheme %q in %q: expected one of %s%s", role, scheme, redact.URI(raw), strings.Join(allowed, ", "), suggestion(raw))
	}
	// Split by hand, as Python's urlsplit does, so that an authority such as
	// "busybox:latest" (a docker:// image) is not rejected as a bad port.
	rest = strings.TrimPrefix(rest, "//")
	rest, _, _ = strings.Cut(rest, "#")
	rest, query, _ := strings.Cut(rest, "?")
	host, path := rest, ""
	if i := strings.Index(rest, "/"); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	opts, err := coerceQuery(query)
	if err != nil {
		return URI{}, fmt.Errorf("invalid query in %s URI %q: %w", role, redact.URI(raw), redact.Error(err))
	}
	out := URI{Raw: raw, Scheme: scheme, Options: opts}
	if fileLike[scheme] {
		if host != "" && host != "localhost" {
			path = host + path
		}
		out.Path = path
	} else {
		out.Host = host
		out.Path = strings.TrimPrefix(path, "/")
	}
	return out, nil
}

// coerceQuery parses a query string keeping key order irrelevant: values are
// coerced, a repeated key becomes a list, and keys with blank values are
// dropped (as Python's parse_qs does).
func coerceQuery(q string) (map[string]any, error) {
	out := map[string]any{}
	if q == "" {
		return out, nil
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return nil, err
	}
	for k, vs := range vals {
		var kept []any
		for _, v := range vs {
			if v == "" {
				continue
			}
			kept = append(kept, Coerce(v))
		}
		switch len(kept) {
		case 0:
		case 1:
			out[k] = kept[0]
		default:
			out[k] = kept
		}
	}
	return out, nil
}

// Coerce converts a query or filter option value as the original does:
// true/yes/1 and false/no/0 (any case) become bools, other integers become
// ints, anything else stays a string.
func Coerce(v string) any {
	switch strings.ToLower(v) {
	case "true", "yes", "1":
		return true
	case "false", "no", "0":
		return false
	}
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return v
}

// String returns option key as text, whatever it was coerced to, and whether
// it was given. A list yields its last value.
func (u URI) String(key string) (string, bool) { return optString(u.Options, key) }

// Bool returns option key as a bool, def when it is absent, and an error
// naming the URI and the option when the value is not a boolean.
func (u URI) Bool(key string, def bool) (bool, error) {
	return optBool(u.Options, key, def, "option "+key+" of "+u.Raw)
}

// Int returns option key as an int, def when absent.
func (u URI) Int(key string, def int) (int, error) {
	return optInt(u.Options, key, def, "option "+key+" of "+u.Raw)
}

func optString(opts map[string]any, key string) (string, bool) {
	v, ok := opts[key]
	if !ok {
		return "", false
	}
	return textOf(v), true
}

func textOf(v any) string {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return ""
		}
		return textOf(x[len(x)-1])
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		return fmt.Sprint(x)
	}
}

// lastOpt is the value of option key; given several times, its last value.
func lastOpt(opts map[string]any, key string) (any, bool) {
	v, ok := opts[key]
	if l, isList := v.([]any); isList && len(l) > 0 {
		v = l[len(l)-1]
	}
	return v, ok
}

func optBool(opts map[string]any, key string, def bool, what string) (bool, error) {
	v, ok := lastOpt(opts, key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case int:
		return x != 0, nil
	}
	return false, fmt.Errorf("%s: expected true/false, yes/no or 1/0, got %q", what, textOf(v))
}

func optInt(opts map[string]any, key string, def int, what string) (int, error) {
	v, ok := lastOpt(opts, key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case int:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s: expected an integer, got %q", what, textOf(v))
}
