package names

import (
	"errors"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		name          string
		layer, config bool // accepted as a layer, as a config
	}{
		{hex, true, true},
		{hex + ".json", true, true},
		{"sha256:" + hex, true, true},
		{"layer00", true, true},
		{"blobs/sha256/" + hex, false, true},
		{"", false, false},
		{".", false, false},
		{"..", false, false},
		{"../x", false, false},
		{"/etc/passwd", false, false},
		{"a//b", false, false},
		{"a/./b", false, false},
		{"a/", false, false},
		{".occystrap-tmp-x", false, false},
		{".wh.x", false, false},
		{"a\\b", false, false},
		{"a\nb", false, false},
		{"a\x1b[31m", false, false},
		{"a\x00b", false, false},
		{strings.Repeat("x", 256), false, false},
		{"manifest-x_app-v1/evil", false, false},
		{"manifest-x_app-v1", false, false},
		{"manifest", false, false},
		{"manifest.json", false, false},
		{"catalog.json", false, false},
		{"rootfs", false, false},
		{"layer.tar", false, false},
		{hex + "/layer.tar", false, false},
		{"manifesto", true, true}, // only the output's own names are reserved
		{"index.json", false, false},
		{"config.json", false, false},
	}
	for _, tt := range tests {
		all := Any(Dir, Bundle, Archive)
		lerr, cerr := Layer(tt.name, all), Config(tt.name, all)
		if (lerr == nil) != tt.layer || lerr != nil && !errors.Is(lerr, ErrUnsafe) {
			t.Errorf("Layer(%q) = %v, want accepted %v", tt.name, lerr, tt.layer)
		}
		if (cerr == nil) != tt.config || cerr != nil && !errors.Is(cerr, ErrUnsafe) {
			t.Errorf("Config(%q) = %v, want accepted %v", tt.name, cerr, tt.config)
		}
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"abc", "blobs/sha256/x", "../x", "/x", "a/b/../c", "manifest-x/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, check := range []func(string, Reserved) error{Layer, Config} {
			if check(name, nil) != nil {
				continue
			}
			// An accepted name stays inside: no component climbs, none is
			// absolute, none is hidden.
			if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") || strings.Contains("/"+name, "/.") {
				t.Fatalf("accepted %q", name)
			}
		}
		if Layer(name, nil) == nil && strings.Contains(name, "/") {
			t.Fatalf("layer name with a slash accepted: %q", name)
		}
	})
}
