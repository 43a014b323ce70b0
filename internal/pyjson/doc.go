// Package pyjson reads JSON keeping the order of object keys, and writes it
// the way Python's json.dumps does with its default arguments: separators
// ", " and ": ", ensure_ascii (every non-ASCII character as a \uXXXX escape),
// integers as they were, floats in Python's repr form. With SortKeys it is
// json.dumps(sort_keys=True).
//
// The original occystrap re-serializes image configs and writes its JSON
// lines this way; producing the same bytes keeps config digests equal to the
// original's. Everything here is a pure function, safe for concurrent use.
package pyjson
