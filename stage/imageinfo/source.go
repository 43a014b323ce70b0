package imageinfo

import (
	"context"
	"fmt"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/stage"
)

// ItemSource is a stage.Source that sends its items in order: a config,
// then layers whose bodies fetch their content when opened.
type ItemSource struct {
	Items []stage.Item
}

// Properties names the source in statistics.
func (s *ItemSource) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "check-source"}
}

// Emit sends every item; those not sent are released.
func (s *ItemSource) Emit(ctx context.Context, out chan<- stage.Item) error {
	for i, it := range s.Items {
		if err := stage.Send(ctx, out, it); err != nil {
			for _, rest := range s.Items[i+1:] {
				_ = rest.Release()
			}
			return err
		}
	}
	return nil
}

// DockerMeta builds the metadata of a docker:// image from the engine's
// inspect document: no manifest, and a config in the OCI form the original
// derives (architecture, os, variant when set, created, rootfs, config, and
// an empty history).
func DockerMeta(image, tag string, inspect []byte) (Meta, error) {
	v, err := pyjson.Decode(inspect)
	if err != nil {
		return Meta{}, fmt.Errorf("parse inspect of %s:%s: %w", image, tag, err)
	}
	in := obj(v)
	if in == nil {
		return Meta{}, fmt.Errorf("parse inspect of %s:%s: %w", image, tag, ErrNotObject)
	}
	cfg := &pyjson.Object{}
	cfg.Set("architecture", getOr(in, "Architecture", ""))
	cfg.Set("os", getOr(in, "Os", ""))
	if v := get(in, "Variant"); truthy(v) {
		cfg.Set("variant", v)
	}
	cfg.Set("created", getOr(in, "Created", ""))
	rfs := obj(get(in, "RootFS"))
	rootfs := &pyjson.Object{}
	rootfs.Set("type", getOr(rfs, "Type", "layers"))
	ids := get(rfs, "Layers")
	if ids == nil {
		ids = []any{}
	}
	rootfs.Set("diff_ids", ids)
	cfg.Set("rootfs", rootfs)
	c := get(in, "Config")
	if c == nil {
		c = &pyjson.Object{}
	}
	cfg.Set("config", c)
	cfg.Set("history", []any{})
	return Meta{Image: image, Tag: tag, Config: cfg}, nil
}
