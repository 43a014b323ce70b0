package filter

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

// ErrConfig is returned when an image config cannot be rewritten (not JSON,
// or its rootfs.diff_ids do not match the layers).
var ErrConfig = errors.New("cannot rewrite image config")

// ErrDuplicate is returned when an item arrives twice (two configs, or a
// layer Seq seen before).
var ErrDuplicate = stage.Sentinel(stage.ErrDuplicate, "item arrived twice")

// ErrCorruptLayer is returned by search after its results when a layer
// could not be read to its end.
var ErrCorruptLayer = errors.New("layer is not a readable tar")
