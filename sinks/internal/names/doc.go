// Package names checks the names a source gives configs and layers before
// an output uses them as paths or archive members.
//
// Names come from untrusted input (a docker-save archive's manifest.json
// says where its layers are), and the original occystrap's scheme makes a
// layer's name its folder and a config's name its path in the archive. An
// output accepts:
//
//   - as a layer name, one plain path component: not empty, not "." or
//     "..", no "/", "\", NUL or other control character, not starting with
//     "." (that keeps out hidden files, whiteouts and the outputs' own
//     temporary names), at most 255 bytes, and none of the names the output
//     uses itself (Reserved: Dir, Bundle, Archive);
//   - as a config name, one or more such components joined by "/" (the
//     Docker 25+ layout names it "blobs/sha256/<hex>"), whose first is not
//     reserved and whose last is not "layer.tar" (a layer's file).
//
// Anything else is refused with an error wrapping ErrUnsafe. Every output
// refuses the same names the same way, so an archive that dir:// refuses is
// refused by tar:// and mounts:// too.
//
// The functions are pure and safe for concurrent use.
package names
