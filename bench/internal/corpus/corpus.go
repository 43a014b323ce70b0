package corpus

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/transport/mediatype"
)

// version changes whenever Generate's output would change, so old caches
// are not reused.
const version = 1

// Docker media types (what Kolla images on quay.io use).
const (
	MediaTypeManifest = mediatype.DockerManifest
	MediaTypeConfig   = mediatype.DockerConfig
	MediaTypeLayer    = mediatype.DockerGzip
)

// Params pick a corpus.
type Params struct {
	// Images is how many images (at least 1).
	Images int `json:"images"`
	// GroupSize is how many images share a group layer (Kolla: nova-*,
	// neutron-*, ...).
	GroupSize int `json:"group_size"`
	// BaseKB, GroupKB and ImageKB are the uncompressed sizes of the two
	// shared base layers, each group layer and each image's own layer.
	BaseKB  int `json:"base_kb"`
	GroupKB int `json:"group_kb"`
	ImageKB int `json:"image_kb"`
	// Seed makes the content.
	Seed uint64 `json:"seed"`
}

// Small is the quick preset (CI smoke runs, the demo).
func Small() Params {
	return Params{Images: 6, GroupSize: 3, BaseKB: 4096, GroupKB: 1024, ImageKB: 512, Seed: 1}
}

// Full is the preset of the published figures: 50 images.
func Full() Params {
	return Params{Images: 50, GroupSize: 5, BaseKB: 24576, GroupKB: 6144, ImageKB: 2048, Seed: 1}
}

// Key names the cache directory of p.
func (p Params) Key() string {
	b, _ := json.Marshal(struct {
		V int
		P Params
	}{version, p})
	s := sha256.Sum256(b)
	return fmt.Sprintf("v%d-%dimg-%s", version, p.Images, hex.EncodeToString(s[:6]))
}

// Namespace is the organisation (quay) and path prefix (registry) of every
// image.
const Namespace = "kolla"

// Tag is every image's tag.
const Tag = "latest"

// Layer is one layer blob.
type Layer struct {
	Digest digest.Digest `json:"digest"` // of the gzipped blob
	DiffID digest.Digest `json:"diff_id"`
	Size   int64         `json:"size"` // gzipped
	Raw    int64         `json:"raw"`  // uncompressed
}

// Image is one image of the corpus.
type Image struct {
	// Repo is "kolla/<name>".
	Repo   string        `json:"repo"`
	Tag    string        `json:"tag"`
	Config digest.Digest `json:"config"`
	// Manifest is the digest of the manifest blob (a Docker v2 manifest).
	Manifest digest.Digest `json:"manifest"`
	Layers   []Layer       `json:"layers"`
}

// Corpus is a generated corpus in Dir.
type Corpus struct {
	Params Params  `json:"params"`
	Images []Image `json:"images"`
	// Dir holds blobs/sha256/<hex>; not stored.
	Dir string `json:"-"`
}

// Blob is the path of a blob.
func (c *Corpus) Blob(d digest.Digest) string {
	return filepath.Join(c.Dir, "blobs", "sha256", d.Encoded())
}

// ReadBlob reads a (small) blob whole: configs and manifests.
func (c *Corpus) ReadBlob(d digest.Digest) ([]byte, error) {
	return os.ReadFile(c.Blob(d))
}

// UniqueBlobs are the distinct blobs (configs and layers) of images, with
// their sizes, in first-use order.
func UniqueBlobs(imgs []Image, c *Corpus) ([]Layer, error) {
	seen := map[digest.Digest]bool{}
	var out []Layer
	for _, im := range imgs {
		fi, err := os.Stat(c.Blob(im.Config))
		if err != nil {
			return nil, fmt.Errorf("corpus: config of %s: %w", im.Repo, err)
		}
		if !seen[im.Config] {
			seen[im.Config] = true
			out = append(out, Layer{Digest: im.Config, Size: fi.Size()})
		}
		for _, l := range im.Layers {
			if !seen[l.Digest] {
				seen[l.Digest] = true
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// Load returns the corpus for p under root (a cache directory), generating
// it first when it is not there yet.
func Load(ctx context.Context, root string, p Params, progress io.Writer) (*Corpus, error) {
	if p.Images < 1 || p.GroupSize < 1 {
		return nil, fmt.Errorf("corpus: need at least one image and a group size, got %+v", p)
	}
	dir := filepath.Join(root, p.Key())
	if b, err := os.ReadFile(filepath.Join(dir, "corpus.json")); err == nil {
		c := &Corpus{Dir: dir}
		if err := json.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("corpus: read %s: %w", dir, err)
		}
		return c, nil
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(root, ".gen-")
	if err != nil {
		if err = os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		if tmp, err = os.MkdirTemp(root, ".gen-"); err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
	}
	defer os.RemoveAll(tmp)
	c, err := generate(ctx, tmp, p)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "corpus.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		// Another process may have won the race; use its copy.
		if _, serr := os.Stat(filepath.Join(dir, "corpus.json")); serr != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
	}
	c.Dir = dir
	if progress != nil {
		fmt.Fprintf(progress, "generated corpus %s (%d images) in %.1fs\n", dir, len(c.Images), time.Since(start).Seconds())
	}
	return c, nil
}

// Kolla-like service groups and image roles.
var (
	groups = []string{"nova", "neutron", "glance", "cinder", "keystone", "heat", "horizon", "ironic", "octavia", "swift", "designate", "barbican", "magnum", "manila", "placement", "aodh", "ceilometer", "gnocchi", "trove", "zun"}
	roles  = []string{"base", "api", "conductor", "scheduler", "compute", "worker", "engine", "agent", "proxy", "manager"}
)

// layerSpec says how to make one layer.
type layerSpec struct {
	id     string // seeds the content and names its directory
	kb     int
	whiteA string // a path the layer whites out ("" for none)
	opaque string // a directory the layer makes opaque ("" for none)
}

func generate(ctx context.Context, dir string, p Params) (*Corpus, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	base := []layerSpec{{id: "os", kb: p.BaseKB * 2 / 3}, {id: "kolla-base", kb: p.BaseKB / 3, whiteA: "os/usr/share/d000/f0003.txt"}}
	type imgSpec struct {
		repo   string
		layers []layerSpec
	}
	var specsList []imgSpec
	groupLayers := map[int]layerSpec{}
	for i := 0; i < p.Images; i++ {
		g := i / p.GroupSize
		gname := groups[g%len(groups)]
		if g >= len(groups) {
			gname = fmt.Sprintf("%s%d", gname, g/len(groups))
		}
		if _, ok := groupLayers[g]; !ok {
			groupLayers[g] = layerSpec{id: "group-" + gname, kb: p.GroupKB, opaque: "kolla-base/etc/d001"}
		}
		role := roles[(i%p.GroupSize)%len(roles)]
		if i%p.GroupSize >= len(roles) {
			role = fmt.Sprintf("%s%d", role, i%p.GroupSize)
		}
		own := layerSpec{id: "img-" + gname + "-" + role, kb: p.ImageKB, whiteA: "group-" + gname + "/usr/share/d000/f0001.txt"}
		specsList = append(specsList, imgSpec{repo: Namespace + "/" + gname + "-" + role, layers: []layerSpec{base[0], base[1], groupLayers[g], own}})
	}
	// Generate each distinct layer once, on every CPU.
	uniq := map[string]layerSpec{}
	var order []string
	for _, s := range specsList {
		for _, l := range s.layers {
			if _, ok := uniq[l.id]; !ok {
				uniq[l.id] = l
				order = append(order, l.id)
			}
		}
	}
	results := make([]Layer, len(order))
	pl := pool.New().WithErrors().WithContext(ctx).WithMaxGoroutines(runtime.NumCPU())
	for i, id := range order {
		pl.Go(func(ctx context.Context) error {
			l, err := writeLayer(dir, p.Seed, uniq[id])
			results[i] = l
			return err
		})
	}
	if err := pl.Wait(); err != nil {
		return nil, err
	}
	byID := map[string]Layer{}
	for i, id := range order {
		byID[id] = results[i]
	}
	c := &Corpus{Params: p, Dir: dir}
	for _, s := range specsList {
		im := Image{Repo: s.repo, Tag: Tag}
		cfg := v1.Image{
			Created:  ptr(time.Date(2024, 4, 3, 12, 0, 0, 0, time.UTC)),
			Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
			Config:   v1.ImageConfig{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "KOLLA_BASE_DISTRO=debian"}, Cmd: []string{"kolla_start"}, User: "root"},
			RootFS:   v1.RootFS{Type: "layers"},
		}
		man := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: MediaTypeManifest}
		for _, ls := range s.layers {
			l := byID[ls.id]
			im.Layers = append(im.Layers, l)
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
			cfg.History = append(cfg.History, v1.History{Created: cfg.Created, CreatedBy: "/bin/sh -c #(nop) ADD " + ls.id})
			man.Layers = append(man.Layers, v1.Descriptor{MediaType: MediaTypeLayer, Digest: l.Digest, Size: l.Size})
		}
		cb, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		im.Config, err = writeBlob(dir, cb)
		if err != nil {
			return nil, err
		}
		man.Config = v1.Descriptor{MediaType: MediaTypeConfig, Digest: im.Config, Size: int64(len(cb))}
		mb, err := json.Marshal(man)
		if err != nil {
			return nil, err
		}
		if im.Manifest, err = writeBlob(dir, mb); err != nil {
			return nil, err
		}
		c.Images = append(c.Images, im)
	}
	return c, nil
}

func ptr[T any](v T) *T { return &v }

func writeBlob(dir string, b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		return "", fmt.Errorf("corpus: %w", err)
	}
	return d, nil
}

// countWriter counts bytes.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// writeLayer writes one gzipped layer blob and describes it.
func writeLayer(dir string, seed uint64, s layerSpec) (Layer, error) {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs"), "layer-")
	if err != nil {
		return Layer{}, fmt.Errorf("corpus: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	raw := &countWriter{}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(f, blobHash), gzip.DefaultCompression)
	if err != nil {
		return Layer{}, err
	}
	if err := layerTar(io.MultiWriter(gz, diffHash, raw), seed, s); err != nil {
		return Layer{}, fmt.Errorf("corpus: layer %s: %w", s.id, err)
	}
	if err := gz.Close(); err != nil {
		return Layer{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Layer{}, err
	}
	if err := f.Close(); err != nil {
		return Layer{}, err
	}
	l := Layer{
		Digest: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(blobHash.Sum(nil))),
		DiffID: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diffHash.Sum(nil))),
		Size:   fi.Size(),
		Raw:    raw.n,
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", l.Digest.Encoded())); err != nil {
		return Layer{}, fmt.Errorf("corpus: %w", err)
	}
	return l, nil
}

// words make text-like content that gzips near 3:1 when mixed with some
// random bytes.
var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at
which but have an they you were her she there one all we their can has been if more when will would who so no
python openstack nova neutron glance config service api server client request response module import def class
return self none true false lib usr share etc var log run bin sbin local include package version license copyright
error warning info debug start stop restart status conf ini yaml json http https port host address network subnet
router volume image instance flavor project user role domain token endpoint region zone cell compute scheduler`)

func layerTar(w io.Writer, seed uint64, s layerSpec) error {
	h := sha256.Sum256([]byte(s.id))
	r := rand.New(rand.NewPCG(seed, uint64(h[0])|uint64(h[1])<<8|uint64(h[2])<<16|uint64(h[3])<<24))
	tw := tar.NewWriter(w)
	mtime := time.Date(2024, 4, 3, 12, 0, 0, 0, time.UTC)
	hdr := func(name string, typ byte, mode int64, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: mtime, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
	}
	top := s.id
	if err := tw.WriteHeader(hdr(top+"/", tar.TypeDir, 0o755, 0)); err != nil {
		return err
	}
	budget := int64(s.kb) * 1024
	var buf bytes.Buffer
	var files []string
	for d := 0; budget > 0; d++ {
		dirs := []string{fmt.Sprintf("%s/usr/share/d%03d", top, d), fmt.Sprintf("%s/etc/d%03d", top, d)}
		if d == 0 {
			for _, p := range []string{top + "/usr", top + "/usr/share", top + "/etc"} {
				if err := tw.WriteHeader(hdr(p+"/", tar.TypeDir, 0o755, 0)); err != nil {
					return err
				}
			}
		}
		for _, dd := range dirs {
			if err := tw.WriteHeader(hdr(dd+"/", tar.TypeDir, 0o755, 0)); err != nil {
				return err
			}
		}
		for i := 0; i < 48 && budget > 0; i++ {
			dd := dirs[i%2]
			// Sizes: mostly small files, some large, like a distro tree.
			size := int64(256 + r.IntN(8192))
			if r.IntN(16) == 0 {
				size = int64(32768 + r.IntN(262144))
			}
			size = min(size, max(budget, 64))
			buf.Reset()
			for int64(buf.Len()) < size {
				if r.IntN(64) == 0 {
					var rb [24]byte
					for j := range rb {
						rb[j] = byte(r.Uint32())
					}
					buf.Write(rb[:])
					continue
				}
				buf.WriteString(words[r.IntN(len(words))])
				if r.IntN(12) == 0 {
					buf.WriteByte('\n')
				} else {
					buf.WriteByte(' ')
				}
			}
			buf.Truncate(int(size))
			name := fmt.Sprintf("%s/f%04d.txt", dd, i)
			mode := int64(0o644)
			if i%7 == 0 {
				mode = 0o755
			}
			if err := tw.WriteHeader(hdr(name, tar.TypeReg, mode, size)); err != nil {
				return err
			}
			if _, err := tw.Write(buf.Bytes()); err != nil {
				return err
			}
			files = append(files, name)
			budget -= size + 512
			switch {
			case i%10 == 3:
				h := hdr(fmt.Sprintf("%s/l%04d", dd, i), tar.TypeSymlink, 0o777, 0)
				h.Linkname = fmt.Sprintf("f%04d.txt", i)
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			case i%20 == 7:
				h := hdr(fmt.Sprintf("%s/h%04d.txt", dd, i), tar.TypeLink, 0o644, 0)
				h.Linkname = name
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			}
		}
	}
	if s.whiteA != "" {
		dirPart, base := s.whiteA[:strings.LastIndex(s.whiteA, "/")], s.whiteA[strings.LastIndex(s.whiteA, "/")+1:]
		if err := tw.WriteHeader(hdr(dirPart+"/", tar.TypeDir, 0o755, 0)); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(dirPart+"/.wh."+base, tar.TypeReg, 0o644, 0)); err != nil {
			return err
		}
	}
	if s.opaque != "" {
		if err := tw.WriteHeader(hdr(s.opaque+"/", tar.TypeDir, 0o755, 0)); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(s.opaque+"/.wh..wh..opq", tar.TypeReg, 0o644, 0)); err != nil {
			return err
		}
	}
	_ = files
	return tw.Close()
}
