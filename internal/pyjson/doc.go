// Package pyjson reads JSON keeping the order of object keys, and writes it
// byte for byte as Python's json.dumps does with ensure_ascii on (its
// default): every non-ASCII character as a lowercase \uXXXX escape (surrogate
// pairs above U+FFFF), no HTML escaping of <, > and &, integers as they were,
// floats in Python's repr form.
//
//   - Marshal is json.dumps(v) with the default separators ", " and ": ", in
//     key order, or json.dumps(v, sort_keys=True) with SortKeys.
//   - Indent is json.dumps(v, indent=..., sort_keys=True) for Go values whose
//     keys encoding/json already writes sorted; the separators are then ","
//     and ": ".
//   - String is json.dumps(s) for one string.
//
// The original occystrap re-serializes image configs and writes its JSON
// lines and manifest files this way; producing the same bytes keeps config
// digests and files equal to the original's. Everything here is a pure
// function, safe for concurrent use.
package pyjson
