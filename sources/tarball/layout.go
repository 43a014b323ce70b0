package tarball

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/platform"
	"github.com/occystrap/occystrap/internal/tempname"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/mediatype"
)

const (
	// maxIndexDepth bounds how deeply indexes may nest.
	maxIndexDepth = 8
	// annotationContainerdName is the image name containerd (and nerdctl,
	// docker 25+) records in index.json.
	annotationContainerdName = "io.containerd.image.name"
)

// candidate is one image an OCI layout holds.
type candidate struct {
	desc     v1.Descriptor // of its manifest
	man      v1.Manifest
	config   []byte
	platform platform.Platform
	names    map[string]string // annotations of the top-level entry it came from
}

// loadLayout reads an OCI image layout (oci-layout, index.json, blobs/)
// that has no manifest.json: index.json and any indexes nested in it are
// walked, the image for the platform asked for is chosen (the only one, when
// there is one), and its config and layers are resolved as blobs/<alg>/<hex>.
func (s *Source) loadLayout(idx map[string]member) error {
	im, err := s.resolve(idx, "index.json")
	if err != nil {
		return err
	}
	raw, err := s.readMember(im, maxManifest)
	if err != nil {
		return err
	}
	var top v1.Index
	if err := json.Unmarshal(raw, &top); err != nil {
		return fmt.Errorf("archive %s: member index.json: %w: %w", s.path, ErrBadManifest, err)
	}
	var cands []candidate
	for _, d := range top.Manifests {
		if err := s.walk(idx, d, d.Annotations, 0, &cands); err != nil {
			return err
		}
	}
	if len(cands) == 0 {
		return fmt.Errorf("archive %s: index.json: %w", s.path, ErrNoImage)
	}
	pick := 0
	if len(cands) > 1 {
		have := make([]platform.Platform, len(cands))
		for i, c := range cands {
			have[i] = c.platform
		}
		if pick, err = platform.Choose(s.opts.Platform, have); err != nil {
			return fmt.Errorf("archive %s: %w", s.path, err)
		}
	}
	c := cands[pick]
	s.img = stage.Image{Name: "unknown", Tag: "unknown"}
	if n := c.names[annotationContainerdName]; n != "" {
		s.img = splitRef(n)
	} else if n := c.names[v1.AnnotationRefName]; n != "" {
		// Usually a tag alone ("v1"); some tools write a whole reference.
		if strings.ContainsAny(n, "/:") {
			s.img = splitRef(n)
		} else {
			s.img = stage.Image{Name: "unknown", Tag: n}
		}
	}
	s.config = c.config
	s.configName = blobPath(c.man.Config.Digest)
	paths := make([]string, len(c.man.Layers))
	for i, l := range c.man.Layers {
		paths[i] = blobPath(l.Digest)
	}
	return s.addLayers(idx, paths)
}

// blobPath is where an OCI layout keeps blob d.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// walk adds the images descriptor d leads to: itself when it is a
// manifest, its entries when it is an index.
func (s *Source) walk(idx map[string]member, d v1.Descriptor, names map[string]string, depth int, out *[]candidate) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("archive %s: %w: indexes nested more than %d deep", s.path, ErrBadManifest, maxIndexDepth)
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("archive %s: %w: descriptor digest %q: %w", s.path, ErrBadManifest, d.Digest, err)
	}
	raw, err := s.readBlob(idx, d.Digest, maxManifest)
	if err != nil {
		return err
	}
	switch d.MediaType {
	case v1.MediaTypeImageIndex, mediatype.DockerList:
		var ix v1.Index
		if err := json.Unmarshal(raw, &ix); err != nil {
			return fmt.Errorf("archive %s: index %s: %w: %w", s.path, d.Digest, ErrBadManifest, err)
		}
		for _, c := range ix.Manifests {
			if err := s.walk(idx, c, names, depth+1, out); err != nil {
				return err
			}
		}
		return nil
	case v1.MediaTypeImageManifest, mediatype.DockerManifest, "":
	default:
		return nil // not an image (an artifact, a signature): ignored
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("archive %s: manifest %s: %w: %w", s.path, d.Digest, ErrBadManifest, err)
	}
	if m.Config.Digest.Validate() != nil {
		return fmt.Errorf("archive %s: manifest %s: %w: no valid config descriptor", s.path, d.Digest, ErrBadManifest)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return fmt.Errorf("archive %s: manifest %s: %w: layer digest %q: %w", s.path, d.Digest, ErrBadManifest, l.Digest, err)
		}
	}
	cfg, err := s.readBlob(idx, m.Config.Digest, maxConfig)
	if err != nil {
		return err
	}
	c := candidate{desc: d, man: m, config: cfg, platform: platform.FromOCI(d.Platform), names: names}
	if d.Platform == nil {
		// The platform from the config, as containerd does.
		var p v1.Platform
		if json.Unmarshal(cfg, &p) == nil {
			c.platform = platform.FromOCI(&p)
		}
	}
	*out = append(*out, c)
	return nil
}

// readBlob reads a small blob of the layout, checking its digest.
func (s *Source) readBlob(idx map[string]member, d digest.Digest, limit int64) ([]byte, error) {
	m, err := s.resolve(idx, blobPath(d))
	if err != nil {
		return nil, err
	}
	b, err := s.readMember(m, limit)
	if err != nil {
		return nil, err
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
		return nil, fmt.Errorf("archive %s: blob %s: %w: content has digest %s", s.path, d, ErrDigest, d.Algorithm().FromBytes(b))
	}
	return b, nil
}

// decompressArchive returns the file to index: path itself, or, when the
// archive is gzip- or zstd-compressed as a whole, a decompressed copy in
// tempDir (spooled true; the caller removes it). gzip goes through z.
func decompressArchive(f *os.File, path, tempDir string, z *inflate.Inflater) (file string, spooled bool, err error) {
	var b [4]byte
	n, err := io.ReadFull(f, b[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("open archive %s: %w", path, err)
	}
	var dec io.Reader
	switch {
	case n >= 2 && b[0] == gzipMagic[0] && b[1] == gzipMagic[1]:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", false, fmt.Errorf("open archive %s: %w", path, err)
		}
		size := int64(-1)
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		zr, err := z.Gunzip(context.Background(), f, size)
		if err != nil {
			return "", false, fmt.Errorf("open archive %s: gzip: %w", path, err)
		}
		defer zr.Close()
		dec = zr
	case n == 4 && [4]byte(zstdMagic) == b:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", false, fmt.Errorf("open archive %s: %w", path, err)
		}
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return "", false, fmt.Errorf("open archive %s: zstd: %w", path, err)
		}
		defer zr.Close()
		dec = zr
	default:
		return path, false, nil
	}
	tmp, err := tempname.Create(tempDir, "archive", ".tar")
	if err != nil {
		return "", false, fmt.Errorf("open archive %s: decompress: %w", path, err)
	}
	_, err = io.CopyBuffer(tmp, onlyReader{dec}, make([]byte, copyBuffer))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", false, fmt.Errorf("open archive %s: decompress into %s: %w", path, tmp.Name(), err)
	}
	return tmp.Name(), true, nil
}
