// Package pyjson writes JSON byte for byte as Python's json.dumps does with
// ensure_ascii on (its default), so that files the original occystrap writes
// with json.dump keep their exact bytes: no HTML escaping of <, > and &,
// non-ASCII as lowercase \uXXXX escapes (surrogate pairs above U+FFFF).
//
// Everything here is a pure function, safe to call concurrently.
package pyjson
