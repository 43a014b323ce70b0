// Package fnmatch matches names against shell patterns the way Python's
// fnmatch.fnmatch does on POSIX: case-sensitive, the whole name must match,
// `*` matches any run of characters including `/` (there is no special `**`),
// `?` one character, `[seq]` and `[!seq]` a set with ranges, and a `[` that is
// never closed is a literal. A Pattern is immutable and safe for concurrent
// use.
package fnmatch
