// Package uri parses occystrap's source and destination URIs and filter
// specs, exactly as the original occystrap reads them: `scheme:rest` without
// `//` means `scheme://rest`, schemes are lowercased and aliased, query values
// are coerced (true/yes/1, false/no/0, integers, repeated keys as lists), and
// file-like schemes fold the host into the path. Everything here is a pure
// function of its input and safe for concurrent use.
package uri
