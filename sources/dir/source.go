package dir

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/stage"
)

// Source is one image of a dir:// output.
type Source struct {
	dir        string
	img        stage.Image
	configName string
	config     []byte
	layers     []string // manifest.json's Layers entries
	diffIDs    []digest.Digest
}

// Open finds image:tag in the catalog of the dir:// output at dir and reads
// its manifest and config.
func Open(dir, image, tag string) (*Source, error) {
	var catalog map[string]map[string]string
	if err := readJSON(filepath.Join(dir, "catalog.json"), &catalog); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	manifest, ok := catalog[image][tag]
	if !ok {
		return nil, fmt.Errorf("%s:%s in %s: %w", image, tag, dir, ErrNoSuchImage)
	}
	if !filepath.IsLocal(manifest) {
		return nil, fmt.Errorf("catalog of %s names manifest %q outside the directory", dir, manifest)
	}
	var m []struct {
		Config string
		Layers []string
	}
	if err := readJSON(filepath.Join(dir, manifest), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("manifest %s in %s lists no image", manifest, dir)
	}
	s := &Source{dir: dir, img: stage.Image{Name: image, Tag: tag}, configName: m[0].Config, layers: m[0].Layers}
	for _, p := range append([]string{s.configName}, s.layers...) {
		if !filepath.IsLocal(p) {
			return nil, fmt.Errorf("manifest %s in %s names %q outside the directory", manifest, dir, p)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(dir, s.configName))
	if err != nil {
		return nil, fmt.Errorf("config of %s:%s: %w", image, tag, err)
	}
	s.config = cfg
	var c struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(cfg, &c) == nil && len(c.RootFS.DiffIDs) == len(s.layers) {
		s.diffIDs = c.RootFS.DiffIDs
	}
	return s, nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// Image is the image read.
func (s *Source) Image() stage.Image { return s.img }

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "dir"}
}

// Close releases nothing; it is there for the CLI's source interface.
func (s *Source) Close() error { return nil }

// Emit sends the config and the layers in manifest order. A layer is named
// by its folder ("<name>/layer.tar" gives "<name>"), so that a tar:// output
// writes "<name>/layer.tar" again (the original named it by the whole entry
// and wrote "<name>/layer.tar/layer.tar").
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) error {
	cfg := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: s.configName, Size: int64(len(s.config)), Data: s.config}
	if err := stage.Send(ctx, out, cfg); err != nil {
		return err
	}
	for i, l := range s.layers {
		p := filepath.Join(s.dir, l)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("layer %d of %s: %w", i, s.img, err)
		}
		name := l
		if strings.HasSuffix(l, "/layer.tar") {
			name = path.Dir(l)
		}
		it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: name, Size: fi.Size(), Body: &stage.FileBody{Path: p}}
		if s.diffIDs != nil {
			it.DiffID = s.diffIDs[i]
		}
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}
