package filter

import "errors"

// ErrConfig is returned when an image config cannot be rewritten (not JSON,
// or its rootfs.diff_ids do not match the layers).
var ErrConfig = errors.New("cannot rewrite image config")

// ErrDuplicate is returned when an item arrives twice (two configs, or a
// layer Seq seen before).
var ErrDuplicate = errors.New("item arrived twice")
