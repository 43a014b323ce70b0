package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/layercache"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// finish pushes the manifest once every blob has landed, then records
// the layer cache and logs what the push did.
func (s *Sink) finish(ctx context.Context, config *stage.Item, cfgDesc v1.Descriptor, results map[int]layerResult, manifest *stage.Item, start time.Time) error {
	log := zerolog.Ctx(ctx)
	body, mediaType, err := s.manifest(config.Data, cfgDesc, results, manifest)
	if err != nil {
		return err
	}
	d, err := s.reg.PutManifest(ctx, s.opts.Repo, s.opts.Tag, mediaType, body)
	if err != nil {
		return err
	}
	s.digest = d
	if s.pushed != nil {
		blobs := []digest.Digest{cfgDesc.Digest}
		for i := range len(results) {
			blobs = append(blobs, results[i].desc.Digest)
		}
		s.pushed(cfgDesc.Digest, blobs)
	}
	if s.opts.Cache != nil {
		for _, r := range results {
			if r.cacheKey != "" {
				s.opts.Cache.Record(r.cacheKey, layercache.Entry{
					CompressedDigest: r.desc.Digest, CompressedSize: r.desc.Size,
					MediaType: r.desc.MediaType, FiltersHash: s.opts.FiltersHash,
				})
			}
		}
		if err := s.opts.Cache.Save(); err != nil {
			log.Warn().Err(err).Msg("Could not save the layer cache")
		}
	}
	c := s.Counts()
	ratio := 0.0
	if c.BytesIn > 0 {
		ratio = 100 * float64(c.BytesOut) / float64(c.BytesIn)
	}
	accounting.FromContext(ctx).SetDigest(d.String())
	log.Info().Int("layers", len(results)).Dur("elapsed_ms", time.Since(start)).
		Int64("uploaded", c.Uploaded).Int64("upload_skipped", c.Existing).Int64("mounted", c.Mounted).
		Int64("cache_hits", c.CacheHits).Int64("passthrough", c.Passthrough).
		Int64("bytes_in", c.BytesIn).Int64("bytes_out", c.BytesOut).Float64("ratio_pct", ratio).
		Str("digest", d.String()).Str("media_type", mediaType).Msg("Push complete")
	return nil
}

// schema2 is a Docker schema 2 manifest, its keys in the original's order.
type schema2 struct {
	SchemaVersion int           `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	Config        schema2Desc   `json:"config"`
	Layers        []schema2Desc `json:"layers"`
}

type schema2Desc struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
}

// manifest is the source's manifest as fetched when every blob was copied
// through and matches it; otherwise a Docker schema 2 manifest (an OCI
// manifest of the same shape when a layer is zstd).
func (s *Sink) manifest(cfg []byte, cfgDesc v1.Descriptor, results map[int]layerResult, fetched *stage.Item) ([]byte, string, error) {
	for i := range len(results) {
		if _, ok := results[i]; !ok {
			return nil, "", fmt.Errorf("image %s: layer %d never arrived: %w", s.where(), i, ErrUploadFailed)
		}
	}
	if fetched != nil && asFetched(fetched.Data, cfgDesc.Digest, results) {
		return fetched.Data, fetched.Name, nil
	}
	oci := false
	for _, r := range results {
		oci = oci || mediatype.IsZstd(r.desc.MediaType)
	}
	m := schema2{
		SchemaVersion: 2,
		MediaType:     mediatype.DockerManifest,
		Config:        schema2Desc{MediaType: mediatype.DockerConfig, Size: int64(len(cfg)), Digest: cfgDesc.Digest},
	}
	layerType := dockerMediaType
	if oci {
		m.MediaType, m.Config.MediaType, layerType = v1.MediaTypeImageManifest, v1.MediaTypeImageConfig, ociMediaType
	}
	for i := range len(results) {
		d := results[i].desc
		m.Layers = append(m.Layers, schema2Desc{MediaType: layerType(d.MediaType), Size: d.Size, Digest: d.Digest})
	}
	b, err := json.Marshal(m)
	return b, m.MediaType, err
}

// asFetched reports whether a fetched manifest describes exactly the config
// and the blobs pushed.
func asFetched(body []byte, cfg digest.Digest, results map[int]layerResult) bool {
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil || m.Config.Digest != cfg || len(m.Layers) != len(results) {
		return false
	}
	for i, l := range m.Layers {
		r := results[i]
		if !r.passthrough || r.desc.Digest != l.Digest || r.desc.Size != l.Size {
			return false
		}
	}
	return true
}
