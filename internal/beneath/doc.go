// Package beneath creates, opens, renames and removes paths under a
// directory without ever following a symbolic link below it, so that
// nothing an earlier image left in an output (a symlink to "/etc", say) can
// send a later write, read or removal anywhere else.
//
// Every function takes the directory (root), which the user chose and which
// is resolved as the system resolves it, and a path relative to it (rel,
// with "/" separators). rel is resolved component by component beneath root
// with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), or, on kernels without
// openat2, by a walk that opens each component with O_NOFOLLOW: a symlink
// anywhere in rel, the last component included, is an error wrapping
// ErrSymlink, and a rel that is absolute or climbs out with ".." is refused
// with ErrOutside before anything is touched. Operations on the last
// component (mkdirat, renameat, unlinkat, linkat, fstatat) are made relative
// to the descriptor of its parent directory, so a concurrent swap of a
// parent for a symlink cannot redirect them either.
//
// What this package does not do: decide which names an output may use
// (package sinks/internal/names does), or make a file's content atomic
// (package sinks/internal/atomicfile does, on top of this one).
//
// Every function is safe for concurrent use.
package beneath
