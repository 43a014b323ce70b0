// Package atomicfile writes files under a temporary name in their final
// directory and renames them into place, so that an interrupted write never
// leaves a partial file under the final name for a later run to trust.
//
// Files are not fsync'ed: the guarantee is against an interrupted or failed
// process (the rename is atomic), not against a power cut, and it keeps large
// copies at the speed of the page cache.
//
// The ...At functions take a directory and a path relative to it, resolved
// without following any symlink (package internal/beneath); the others take
// the final name's directory as it is. Temporary names start with
// TempPrefix and the writing process's owner tag (TempName), so that a later run
// can tell what a killed run left from what a live one writes.
//
// Every function is safe to call concurrently, also for the same final name:
// each writer has its own temporary file and the last rename wins.
package atomicfile
