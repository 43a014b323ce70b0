package mounts

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/sinks/internal/bundle"
	"github.com/occystrap/occystrap/stage"
)

// Verify checks what was written for img: the manifest, each layer's
// layer.tar and tree, rootfs being mounted, and the bundle's config files.
// With full, each layer.tar is also read to the end as a tar. It returns the
// problems found and an error only when it could not check.
func (w *Writer) Verify(ctx context.Context, img stage.Image, full bool) ([]string, error) {
	_, layers, problems, err := w.dir.VerifyManifest(img)
	if problems != nil || err != nil {
		return problems, err
	}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		if p := w.dir.VerifyLayer(ctx, img, l, full); p != "" {
			problems = append(problems, p)
		}
		treeRel := strings.TrimSuffix(l, "layer.tar") + LayerDir
		tree := filepath.Join(w.path, filepath.FromSlash(treeRel))
		if fi, err := beneath.Lstat(w.path, treeRel); err != nil || !fi.IsDir() {
			problems = append(problems, "Layer directory missing: "+tree)
		}
	}
	problems = append(problems, bundle.Verify(w.path)...)
	rootfs := filepath.Join(w.path, bundle.RootFS)
	if m, err := isMountPoint(rootfs); err == nil && !m {
		problems = append(problems, "Root filesystem not mounted: "+rootfs)
	}
	return problems, nil
}
