package tarball

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/stage"
)

// Verify checks the archive written for img: it exists, and holds the config,
// every layer the manifest lists, and manifest.json. With full, each
// layer.tar member is also read to the end as a tar. It returns the problems
// found, in the original's words, and an error only when it could not check.
func (w *Writer) Verify(ctx context.Context, img stage.Image, full bool) ([]string, error) {
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{"Tarball missing: " + w.path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", img, err)
	}
	defer f.Close()

	members := map[string]bool{}
	invalid := map[string]error{}
	var manifest []byte
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return []string{fmt.Sprintf("Tarball %s is not a valid tar: %v", w.path, err)}, nil
		}
		members[hdr.Name] = true
		switch {
		case hdr.Name == "manifest.json":
			if manifest, err = io.ReadAll(tr); err != nil {
				return []string{fmt.Sprintf("Tarball %s is not a valid tar: %v", w.path, err)}, nil
			}
		case full && strings.HasSuffix(hdr.Name, "/layer.tar"):
			if err := tarfmt.Check(ctx, tr); err != nil {
				invalid[hdr.Name] = err
			}
		}
	}

	var entries []struct {
		Config string
		Layers []string
	}
	if manifest == nil {
		return []string{"Manifest entry missing: manifest.json in " + w.path}, nil
	}
	if err := json.Unmarshal(manifest, &entries); err != nil || len(entries) == 0 {
		return []string{"Manifest entry invalid: manifest.json in " + w.path}, nil
	}
	var problems []string
	e := entries[0]
	if !members[e.Config] {
		problems = append(problems, "Config entry missing: "+e.Config)
	}
	for _, l := range e.Layers {
		if !members[l] {
			problems = append(problems, "Layer entry missing: "+l)
			continue
		}
		if err, bad := invalid[l]; bad {
			problems = append(problems, fmt.Sprintf("Layer entry %s is not a valid tar: %v", l, err))
		}
	}
	return problems, nil
}
