package mounts

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrMounted is returned when PATH/rootfs is already a mount point.
	ErrMounted = errors.New("rootfs is already mounted")
	// ErrBadPath is returned for a path overlayfs mount options cannot
	// carry (it holds ',', ':' or '\').
	ErrBadPath = errors.New("path cannot be given to an overlay mount")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "mounts output is closed")
)
