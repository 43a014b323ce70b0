package platform

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Platform
		ok   bool
	}{
		{"linux/amd64", Platform{"linux", "amd64", ""}, true},
		{"linux/arm64/v8", Platform{"linux", "arm64", "v8"}, true},
		{"windows/amd64", Platform{"windows", "amd64", ""}, true},
		{"linux", Platform{}, false},
		{"linux/", Platform{}, false},
		{"/amd64", Platform{}, false},
		{"linux/arm/v7/x", Platform{}, false},
		{"", Platform{}, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): error %v is not ErrSyntax", tc.in, err)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	p := func(s string) Platform {
		x, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		want, have string
		match      bool
	}{
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/aarch64", "linux/arm64/v8", true},
		{"linux/arm64/8", "linux/arm64/v8", true},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/arm/7", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/v6", true}, // a v7 machine runs v6 code
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm", "linux/arm/v6", true},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/x86_64", "linux/amd64", true},
		{"linux/amd64/v3", "linux/amd64", true},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64", "linux/amd64/v3", false},
		{"linux/amd64", "linux/arm64/v8", false},
		{"linux/arm64", "linux/arm/v7", false},
		{"Linux/AMD64", "linux/amd64", true},
		{"linux/386", "linux/i386", true},
		{"linux/s390x", "linux/amd64", false},
		{"windows/amd64", "linux/amd64", false},
	} {
		if got := Match(p(tc.want), p(tc.have)); got != tc.match {
			t.Errorf("Match(%s, %s) = %v, want %v", tc.want, tc.have, got, tc.match)
		}
	}
}

func TestChoose(t *testing.T) {
	t.Parallel()
	have := []Platform{{"linux", "amd64", ""}, {"linux", "amd64", "v2"}, {"linux", "arm64", "v8"}, {"linux", "arm", "v6"}, {"linux", "arm", "v7"}, {"unknown", "unknown", ""}}
	for _, tc := range []struct {
		want Platform
		idx  int
	}{
		{Platform{"linux", "amd64", ""}, 0},
		{Platform{"linux", "amd64", "v3"}, 1}, // the newest compatible variant
		{Platform{"linux", "arm64", ""}, 2},
		{Platform{"linux", "arm", ""}, 4}, // exact v7 beats compatible v6
		{Platform{"linux", "arm", "v6"}, 3},
	} {
		i, err := Choose(tc.want, have)
		if err != nil || i != tc.idx {
			t.Errorf("Choose(%v) = %d, %v; want %d", tc.want, i, err, tc.idx)
		}
	}
	_, err := Choose(Platform{"linux", "s390x", ""}, have[:3])
	if !errors.Is(err, ErrNoMatch) {
		t.Fatalf("Choose(s390x) error %v is not ErrNoMatch", err)
	}
	msg := err.Error()
	for _, s := range []string{"Could not find a matching manifest for this os / architecture / variant", "asked for linux/s390x", "linux/amd64, linux/amd64/v2, linux/arm64/v8"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not contain %q", msg, s)
		}
	}
}
