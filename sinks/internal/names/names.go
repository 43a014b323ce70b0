package names

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsafe is returned for a config or layer name an output will not use.
var ErrUnsafe = errors.New("name is not a plain relative path inside the output")

// LayerFile is the name of a layer's file in its folder.
const LayerFile = "layer.tar"

// Reserved reports whether name is one the output uses for itself.
type Reserved func(name string) bool

// Dir is what dir:// reserves: its manifests (manifest.json,
// manifest-<image>-<tag>.json), their expanded trees (manifest,
// manifest-<image>-<tag>) and catalog.json.
func Dir(name string) bool {
	return name == "catalog.json" || name == "manifest" || strings.HasPrefix(name, "manifest.") || strings.HasPrefix(name, "manifest-")
}

// Bundle is what a runtime bundle (mounts://, oci://) reserves besides:
// rootfs, working, delta, config.json and container-config.json.
func Bundle(name string) bool {
	switch name {
	case "rootfs", "working", "delta", "config.json", "container-config.json":
		return true
	}
	return false
}

// Archive is what a docker-save archive (tar://, docker://) reserves:
// manifest.json, repositories, index.json and oci-layout.
func Archive(name string) bool {
	switch name {
	case "manifest.json", "repositories", "index.json", "oci-layout":
		return true
	}
	return false
}

// Any reserves what any of rs reserves (nil entries are skipped).
func Any(rs ...Reserved) Reserved {
	return func(name string) bool {
		for _, r := range rs {
			if r != nil && r(name) {
				return true
			}
		}
		return false
	}
}

// component checks one path component.
func component(c string) error {
	switch {
	case c == "":
		return errors.New("an empty path component")
	case c == "." || c == "..":
		return fmt.Errorf("the path component %q", c)
	case c[0] == '.':
		return errors.New("a path component that starts with '.'")
	case len(c) > 255:
		return errors.New("a path component longer than 255 bytes")
	}
	for i := 0; i < len(c); i++ {
		switch b := c[i]; {
		case b == '/' || b == '\\':
			return fmt.Errorf("a %q", b)
		case b < 0x20 || b == 0x7f:
			return errors.New("a control character")
		}
	}
	return nil
}

// Layer checks a layer name: one plain component that reserved (may be
// nil) does not claim.
func Layer(name string, reserved Reserved) error {
	if err := component(name); err != nil {
		return fmt.Errorf("layer name %q has %w: %w", name, err, ErrUnsafe)
	}
	if reserved != nil && reserved(name) {
		return fmt.Errorf("layer name %q is one the output uses itself: %w", name, ErrUnsafe)
	}
	if name == LayerFile {
		return fmt.Errorf("layer name %q is a layer's file name: %w", name, ErrUnsafe)
	}
	return nil
}

// Config checks a config name: plain components joined by "/", the first
// not claimed by reserved (may be nil), the last not a layer's file.
func Config(name string, reserved Reserved) error {
	parts := strings.Split(name, "/")
	for _, c := range parts {
		if err := component(c); err != nil {
			return fmt.Errorf("config name %q has %w: %w", name, err, ErrUnsafe)
		}
	}
	if reserved != nil && reserved(parts[0]) {
		return fmt.Errorf("config name %q starts with a name the output uses itself: %w", name, ErrUnsafe)
	}
	if parts[len(parts)-1] == LayerFile {
		return fmt.Errorf("config name %q ends in a layer's file name: %w", name, ErrUnsafe)
	}
	return nil
}
