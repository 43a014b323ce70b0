// Package extract unpacks layer tars into one directory tree safely, and
// merges them the way a container runtime stacks them.
//
// A Tree is a target directory opened as an os.Root: nothing it does can
// create, change or remove a file outside that directory. On top of that,
// every entry is checked before it is applied, and refused with an error that
// names it (ErrUnsafeEntry) when its name is absolute or climbs out with "..",
// when it is a hard link to a path outside the tree, or a symlink whose
// relative target climbs above the tree's root. An absolute symlink target
// ("/usr/share/zoneinfo/UTC") is kept as it is: images use them all the time,
// they mean a path inside the image, and os.Root never follows one outward, so
// a later entry written "through" it is refused instead.
//
// Layers are applied in order with Apply. Whiteouts are applied as the OCI
// image spec defines them, by path component and not by string prefix:
//   - ".wh.X" removes X (and its subtree if it is a directory) left by earlier
//     layers;
//   - "DIR/.wh..wh..opq" removes everything under DIR left by earlier layers,
//     and nothing under a sibling such as "DIRx" (the original occystrap used a
//     plain prefix match here).
//
// What the same layer creates is never removed by its own whiteouts, whatever
// order its entries come in. Whiteout entries themselves are not written.
//
// Applying layer after layer in place, rather than first indexing every layer
// and then extracting the final tree, keeps the work to one read of each layer
// and gives hard links the semantics a runtime gives them: a link to a file a
// later layer deletes keeps its content.
//
// With Options.Overlay a tree holds one layer as an overlayfs lower
// directory instead: whiteouts are not applied but written as overlayfs
// expects them, an opaque marker as the extended attribute
// trusted.overlay.opaque=y on its directory and ".wh.X" as a character device
// 0:0 named X, at any depth (the original occystrap got the latter right only
// at the top level).
//
// Regular files (a sparse member's holes kept as holes), directories,
// symlinks, hard links, FIFOs and device nodes are written, each with its
// entry's mode, times (any time the filesystem holds: before 1970, after 2038)
// and, with Options.SameOwner, owner. A hard link entry's mode, owner and time
// go to the inode it shares, as Python's tarfile (the original occystrap) and
// moby apply them. A device node needs CAP_MKNOD: without it the node is
// skipped, and each layer's skips are counted in one warning. Extended
// attributes of entries are not applied.
// Directory modes and times are set when the Tree is closed, deepest first,
// so that a read-only directory can still receive its children.
//
// A Tree is not safe for concurrent use: one goroutine applies its layers in
// order and closes it.
package extract
