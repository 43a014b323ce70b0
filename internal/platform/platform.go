package platform

import (
	"errors"
	"fmt"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNoMatch is what Choose returns when no entry matches. Its text is the
// original occystrap's, which users grep for.
//
//lint:ignore ST1005 the original occystrap's exact message
var ErrNoMatch = errors.New("Could not find a matching manifest for this os / architecture / variant")

// ErrSyntax is returned by Parse for a string that is not os/arch[/variant].
var ErrSyntax = errors.New("expected os/arch[/variant]")

// Platform is an operating system, CPU architecture and variant.
type Platform struct {
	OS, Architecture, Variant string
}

// Parse reads "os/arch[/variant]" (as `--platform` takes it in crane,
// regctl, docker and buildx).
func Parse(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q: %w", s, ErrSyntax)
	}
	for _, p := range parts {
		if p == "" {
			return Platform{}, fmt.Errorf("platform %q: %w", s, ErrSyntax)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FromOCI converts an image-spec platform (nil gives the zero Platform).
func FromOCI(p *v1.Platform) Platform {
	if p == nil {
		return Platform{}
	}
	return Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// String is "os/arch" or "os/arch/variant", as given (not normalised).
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Normalize gives the canonical form containerd uses: the OS lowercased,
// architecture aliases resolved (x86_64 → amd64, aarch64 → arm64, armhf →
// arm/v7, armel → arm/v6, i386 → 386), and default variants made explicit
// or dropped (arm64 → arm64/v8, arm → arm/v7, amd64/v1 → amd64, "7" → "v7").
func Normalize(p Platform) Platform {
	p.OS = strings.ToLower(p.OS)
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch arch {
	case "i386", "i486", "i586", "i686":
		arch, variant = "386", ""
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "8", "v8", "":
			variant = "v8"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// rank says how well have serves want: 0 is an exact match (after
// normalising), a larger number a less preferred but compatible one (an
// older amd64 or arm variant that want's machine also runs), and -1 no
// match.
func rank(want, have Platform) int {
	w, h := Normalize(want), Normalize(have)
	if w.OS != h.OS || w.Architecture != h.Architecture {
		return -1
	}
	if w.Variant == h.Variant {
		return 0
	}
	switch w.Architecture {
	case "amd64", "arm":
		// amd64: "" (v1) < v2 < v3 < v4; arm: v5 < v6 < v7 < v8.
		wl, hl := level(w.Variant), level(h.Variant)
		if wl > 0 && hl > 0 && hl < wl {
			return wl - hl
		}
	}
	return -1
}

// level is a variant's number: "" is 1 (amd64's baseline), "vN" is N.
func level(v string) int {
	if v == "" {
		return 1
	}
	if len(v) == 2 && v[0] == 'v' && v[1] >= '1' && v[1] <= '9' {
		return int(v[1] - '0')
	}
	return 0
}

// Match reports whether an image for have runs on want.
func Match(want, have Platform) bool { return rank(want, have) >= 0 }

// Choose returns the index of the entry of have that best serves want:
// the first exact match (after normalising), else the first of the most
// recent compatible variants. With none, the error wraps ErrNoMatch and
// names want and every platform present.
func Choose(want Platform, have []Platform) (int, error) {
	best, bestRank := -1, -1
	for i, h := range have {
		r := rank(want, h)
		if r < 0 {
			continue
		}
		if best < 0 || r < bestRank {
			best, bestRank = i, r
		}
		if r == 0 {
			break
		}
	}
	if best >= 0 {
		return best, nil
	}
	return -1, &NoMatchError{Want: want, Have: have}
}

// NoMatchError is Choose's error: the platform asked for and those present.
type NoMatchError struct {
	Want Platform
	Have []Platform
}

func (e *NoMatchError) Error() string {
	names := make([]string, 0, len(e.Have))
	for _, h := range e.Have {
		if h == (Platform{}) {
			names = append(names, "(no platform)")
			continue
		}
		names = append(names, h.String())
	}
	present := "none"
	if len(names) > 0 {
		present = strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s: asked for %s; the index has %s", ErrNoMatch, e.Want, present)
}

// Unwrap makes errors.Is(err, ErrNoMatch) hold.
func (e *NoMatchError) Unwrap() error { return ErrNoMatch }
