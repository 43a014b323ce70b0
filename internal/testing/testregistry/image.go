package testregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// Docker media types (transport/mediatype's).
const (
	MediaTypeDockerManifest = mediatype.DockerManifest
	MediaTypeDockerList     = mediatype.DockerList
	MediaTypeDockerConfig   = mediatype.DockerConfig
	MediaTypeDockerGzip     = mediatype.DockerGzip
)

// ImageOptions describe a generated image.
type ImageOptions struct {
	Seed      uint64
	Layers    int // default 3
	LayerSize int // bytes of random content per layer, default 64 KiB
	// Compression of the layers; the zero value is gzip.
	fixture.Compression
	// OCI uses OCI media types; otherwise Docker v2.
	OCI bool
	// Platform; default linux/amd64.
	OS, Arch, Variant string
}

// Layer is a generated layer.
type Layer struct {
	Tar       []byte // uncompressed
	Blob      []byte // as pushed
	MediaType string
	Digest    digest.Digest // of Blob
	DiffID    digest.Digest // of Tar
}

// Image is a generated image.
type Image struct {
	Config       []byte
	ConfigDigest digest.Digest
	Layers       []Layer
	Manifest     []byte
	MediaType    string
	Digest       digest.Digest // of Manifest
	Platform     v1.Platform
}

// NewImage builds an image of random, incompressible layers, deterministic
// for a seed: layer i holds one file, layerI/data.bin, of LayerSize bytes
// (mtime 0, no owner names), written by fixture.LayerTar and compressed by
// fixture.Compress as o.Compression. The bytes are those the checked-in
// archives under cmd/occystrap/testdata were made from: change nothing here
// without remaking them.
func NewImage(o ImageOptions) (Image, error) {
	if o.Layers == 0 {
		o.Layers = 3
	}
	if o.LayerSize == 0 {
		o.LayerSize = 64 << 10
	}
	if o.OS == "" {
		o.OS = "linux"
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	rng := rand.New(rand.NewChaCha8([32]byte{byte(o.Seed), byte(o.Seed >> 8), byte(o.Seed >> 16), byte(o.Seed >> 24)}))
	var layers []Layer
	for i := range o.Layers {
		data := make([]byte, o.LayerSize)
		for j := 0; j+8 <= len(data); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		t := fixture.LayerTar(fixture.Layer{{Name: fmt.Sprintf("layer%d/data.bin", i), Body: string(data), Mtime: time.Unix(0, 0)}})
		blob, mt, err := fixture.Compress(t, o.Compression)
		if err != nil {
			return Image{}, err
		}
		if mt == v1.MediaTypeImageLayerGzip && !o.OCI {
			mt = MediaTypeDockerGzip
		}
		layers = append(layers, Layer{Tar: t, DiffID: fixture.DiffID(t), Blob: blob, MediaType: mt, Digest: digest.FromBytes(blob)})
	}
	return Compose(layers, v1.Platform{OS: o.OS, Architecture: o.Arch, Variant: o.Variant}, o.OCI)
}

// Compose builds the config and manifest of an image made of layers (a
// Docker v2 image, or OCI with oci).
func Compose(layers []Layer, p v1.Platform, oci bool) (Image, error) {
	img := Image{Layers: layers, Platform: p}
	cfg := v1.Image{Platform: p, RootFS: v1.RootFS{Type: "layers"}}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	var err error
	if img.Config, err = json.Marshal(cfg); err != nil {
		return Image{}, err
	}
	img.ConfigDigest = digest.FromBytes(img.Config)
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: MediaTypeDockerManifest,
		Config:    v1.Descriptor{MediaType: MediaTypeDockerConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))},
	}
	if oci {
		m.MediaType = v1.MediaTypeImageManifest
		m.Config.MediaType = v1.MediaTypeImageConfig
	}
	for _, l := range img.Layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: int64(len(l.Blob))})
	}
	if img.Manifest, err = json.Marshal(m); err != nil {
		return Image{}, err
	}
	img.MediaType = m.MediaType
	img.Digest = digest.FromBytes(img.Manifest)
	return img, nil
}

// Push stores img's blobs and manifest in repo under ref (a tag, or "" for
// by-digest only), straight into the app.
func (r *Registry) Push(ctx context.Context, repo, ref string, img Image) error {
	if err := r.PushBlob(ctx, repo, img.Config); err != nil {
		return err
	}
	for _, l := range img.Layers {
		if err := r.PushBlob(ctx, repo, l.Blob); err != nil {
			return err
		}
	}
	if ref == "" {
		ref = img.Digest.String()
	}
	return r.PushManifest(ctx, repo, ref, img.MediaType, img.Manifest)
}

// PushIndex pushes each image by digest, then an index (a Docker manifest
// list, or an OCI index) of them under tag. It returns the index digest.
func (r *Registry) PushIndex(ctx context.Context, repo, tag string, oci bool, imgs ...Image) (digest.Digest, error) {
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeDockerList}
	if oci {
		idx.MediaType = v1.MediaTypeImageIndex
	}
	for _, img := range imgs {
		if err := r.Push(ctx, repo, "", img); err != nil {
			return "", err
		}
		p := img.Platform
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: &p})
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return "", err
	}
	return digest.FromBytes(b), r.PushManifest(ctx, repo, tag, idx.MediaType, b)
}

// PushBlob uploads one blob (POST, then a monolithic PUT).
func (r *Registry) PushBlob(ctx context.Context, repo string, blob []byte) error {
	return r.PushBlobFrom(ctx, repo, digest.FromBytes(blob), bytes.NewReader(blob), int64(len(blob)))
}

// PushBlobFrom uploads the blob d of size bytes read from body (POST, then
// a monolithic PUT), without holding it in memory.
func (r *Registry) PushBlobFrom(ctx context.Context, repo string, d digest.Digest, body io.Reader, size int64) error {
	rec := r.serve(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil, 0)
	if rec.Code != http.StatusAccepted {
		return fmt.Errorf("start upload to %s: %d %s", repo, rec.Code, rec.Body.String())
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	rec = r.serve(ctx, http.MethodPut, loc.Path+"?"+q.Encode(), "application/octet-stream", body, size)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("upload %s to %s: %d %s", d, repo, rec.Code, rec.Body.String())
	}
	return nil
}

// PushManifest stores a manifest under ref.
func (r *Registry) PushManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	rec := r.serve(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, bytes.NewReader(body), int64(len(body)))
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("put manifest %s:%s: %d %s", repo, ref, rec.Code, rec.Body.String())
	}
	return nil
}

func (r *Registry) serve(ctx context.Context, method, target, ctype string, body io.Reader, size int64) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, target, body)
	req.Host = r.Host
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	rec := httptest.NewRecorder()
	r.app.ServeHTTP(rec, req)
	return rec
}
