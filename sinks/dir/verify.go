package dir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/occystrap/occystrap/internal/beneath"
	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/stage"
)

// Verify checks what was written for img: the manifest, the config and every
// layer exist, and each layer.tar has the size it was written with. With full,
// each layer.tar is also read to the end as a tar. It returns the problems
// found, in the original's words, and an error only when it could not check.
func (w *Writer) Verify(ctx context.Context, img stage.Image, full bool) ([]string, error) {
	config, layers, problems, err := w.VerifyManifest(img)
	if problems != nil || err != nil {
		return problems, err
	}
	cpath := filepath.Join(w.path, filepath.FromSlash(config))
	if fi, err := beneath.Lstat(w.path, config); err != nil || !fi.Mode().IsRegular() {
		problems = append(problems, "Config file missing: "+cpath)
	}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		if p := w.VerifyLayer(ctx, img, l, full); p != "" {
			problems = append(problems, p)
		}
	}
	return problems, nil
}

// VerifyLayer checks the layer.tar at rel (a path from the manifest of
// img): it is a regular file, of the size it was written with when this
// Writer wrote it, and, with full, a tar to its end; it is read without
// following any symlink. It returns the problem found, in the original's
// words, or "". Verify here and in mounts:// use it.
func (w *Writer) VerifyLayer(ctx context.Context, img stage.Image, rel string, full bool) string {
	lpath := filepath.Join(w.path, filepath.FromSlash(rel))
	fi, err := beneath.Lstat(w.path, rel)
	if err != nil || !fi.Mode().IsRegular() {
		return "Layer file missing: " + lpath
	}
	if want, ok := w.recordedSize(img, strings.TrimSuffix(rel, "/layer.tar")); ok && want != fi.Size() {
		return fmt.Sprintf("Layer size mismatch: %s (expected %d bytes, found %d)", lpath, want, fi.Size())
	}
	if !full {
		return ""
	}
	f, err := beneath.Open(w.path, rel)
	if err == nil {
		err = tarfmt.Check(ctx, f)
		f.Close()
	}
	if err != nil {
		return fmt.Sprintf("Layer %s is not a valid tar: %v", lpath, err)
	}
	return ""
}

// VerifyManifest reads back the manifest written for img and returns its
// first entry's config and layer paths (relative to the directory, with
// forward slashes). When the manifest is missing or invalid it returns that
// one problem instead, in the original's words, and an error only when it
// could not read the file. Verify here and in mounts:// starts with it.
func (w *Writer) VerifyManifest(img stage.Image) (config string, layers, problems []string, err error) {
	mpath := filepath.Join(w.path, w.ManifestName(img))
	b, err := beneath.ReadFile(w.path, w.ManifestName(img))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, []string{"Manifest file missing: " + mpath}, nil
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("verify %s: %w", img, err)
	}
	var entries []manifestEntry
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) == 0 {
		return "", nil, []string{"Manifest file invalid: " + mpath}, nil
	}
	return entries[0].Config, entries[0].Layers, nil, nil
}
