package dir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/stage"
)

// Verify checks what was written for img: the manifest, the config and every
// layer exist, and each layer.tar has the size it was written with. With full,
// each layer.tar is also read to the end as a tar. It returns the problems
// found, in the original's words, and an error only when it could not check.
func (w *Writer) Verify(ctx context.Context, img stage.Image, full bool) ([]string, error) {
	mpath := filepath.Join(w.path, w.ManifestName(img))
	b, err := os.ReadFile(mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{"Manifest file missing: " + mpath}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", img, err)
	}
	var entries []manifestEntry
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) == 0 {
		return []string{"Manifest file invalid: " + mpath}, nil
	}
	var problems []string
	e := entries[0]
	cpath := filepath.Join(w.path, filepath.FromSlash(e.Config))
	if fi, err := os.Stat(cpath); err != nil || !fi.Mode().IsRegular() {
		problems = append(problems, "Config file missing: "+cpath)
	}
	for _, l := range e.Layers {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		lpath := filepath.Join(w.path, filepath.FromSlash(l))
		fi, err := os.Stat(lpath)
		if err != nil || !fi.Mode().IsRegular() {
			problems = append(problems, "Layer file missing: "+lpath)
			continue
		}
		if want, ok := w.recordedSize(img, strings.TrimSuffix(l, "/layer.tar")); ok && want != fi.Size() {
			problems = append(problems, fmt.Sprintf("Layer size mismatch: %s (expected %d bytes, found %d)", lpath, want, fi.Size()))
			continue
		}
		if full {
			if err := readTar(ctx, lpath); err != nil {
				problems = append(problems, fmt.Sprintf("Layer %s is not a valid tar: %v", lpath, err))
			}
		}
	}
	return problems, nil
}

// readTar reads the tar at name to its end.
func readTar(ctx context.Context, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return tarfmt.Check(ctx, f)
}
