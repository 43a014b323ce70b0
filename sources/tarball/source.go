package tarball

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/internal/inflate"
	"github.com/occystrap/occystrap/internal/platform"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport/reference"
)

const (
	// maxManifest and maxConfig bound what Open reads into memory.
	maxManifest = 16 << 20
	maxConfig   = 64 << 20
	// maxLinkHops bounds how many links a member path may go through.
	maxLinkHops = 16
)

// member is one entry of the archive's index.
type member struct {
	name string
	typ  byte
	link string
	off  int64 // offset of the content in the archive
	size int64
}

// layer is one layer as the manifest lists it.
type layer struct {
	name   string // occystrap's name for it
	mpath  string // the manifest's Layers entry
	m      member // the regular member holding it, links resolved
	comp   compression
	diffID digest.Digest
}

// Source is an opened image archive. See the package documentation.
type Source struct {
	path   string      // the archive's name in errors
	file   string      // what bodies open: path, or the decompressed spool
	spool  bool        // file is a temporary decompressed copy, removed by Close
	reopen bool        // bodies open their own descriptor on file
	f      *os.File    // the index's file; nil for a source over a ReaderAt
	ra     io.ReaderAt // where members are read from
	size   int64
	opts   Options

	inflate *inflate.Inflater

	img        stage.Image
	configName string
	config     []byte
	layers     []layer
	// unchecked, set by Unchecked, turns off the config validation and the
	// DiffID verification (check reports those problems itself).
	unchecked bool
	has       func(name string) bool
}

// Wire takes the sink's test for layers it already has (stage.Wirable):
// those are emitted with a nil Body, as the original's fetch_callback
// skips them (so that, for one, inspect gives them size 0).
func (s *Source) Wire(w stage.Wiring) { s.has = w.Has }

// Options tune Open.
type Options struct {
	// TempDir holds the decompressed copy of a compressed archive ("" =
	// the system's).
	TempDir string
	// Platform chooses the image of an OCI image layout that holds several
	// (default linux/amd64), as for a registry's manifest list.
	Platform platform.Platform
	// Inflate gunzips compressed layers: the run's one inflater (nil: Go's).
	Inflate *inflate.Inflater
}

// Open indexes the archive at path and reads its manifest and config, with
// default options. Errors name the archive and the member at fault.
func Open(path string) (*Source, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options. An archive that is itself gzip- or
// zstd-compressed (image.tar.gz) is first decompressed into a temporary file.
func OpenWith(path string, o Options) (*Source, error) {
	if o.Platform == (platform.Platform{}) {
		o.Platform = platform.Platform{OS: "linux", Architecture: "amd64"}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	file, spooled, err := decompressArchive(f, path, o.TempDir, o.Inflate)
	if err != nil {
		f.Close()
		return nil, err
	}
	if spooled {
		f.Close()
		if f, err = os.Open(file); err != nil {
			_ = os.Remove(file)
			return nil, fmt.Errorf("open archive %s: %w", path, err)
		}
	}
	fail := func(err error) (*Source, error) {
		f.Close()
		if spooled {
			_ = os.Remove(file)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("open archive %s: %w", path, err))
	}
	s, err := openWith(f, st.Size(), path, o)
	if err != nil {
		return fail(err)
	}
	s.f, s.reopen, s.file, s.spool = f, true, file, spooled
	s.inflate = o.Inflate
	return s, nil
}

// open builds a source over ra; name is the archive's name in errors.
// Bodies read ra unless Open sets reopen.
func open(ra io.ReaderAt, size int64, name string) (*Source, error) {
	return openWith(ra, size, name, Options{Platform: platform.Platform{OS: "linux", Architecture: "amd64"}})
}

func openWith(ra io.ReaderAt, size int64, name string, o Options) (*Source, error) {
	s := &Source{path: name, file: name, ra: ra, size: size, opts: o}
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	if err := s.load(idx); err != nil {
		return nil, err
	}
	return s, nil
}

// Unchecked returns a view of the source that emits the config and layers
// without validating the config or verifying layers against their DiffIDs,
// for check, which reports those problems itself.
func (s *Source) Unchecked() *Source {
	c := *s
	c.unchecked = true
	c.f = nil // the view does not own the index's file
	return &c
}

// index reads every header of the archive, skipping contents by seeking.
func (s *Source) index() (map[string]member, error) {
	sr := io.NewSectionReader(s.ra, 0, s.size)
	tr := tar.NewReader(sr)
	idx := map[string]member{}
	last := "(start)"
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return idx, nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %w", ErrTruncated, err)
			}
			return nil, fmt.Errorf("index archive %s after member %s: %w", s.path, last, err)
		}
		last = h.Name
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			continue
		}
		off, _ := sr.Seek(0, io.SeekCurrent) // cannot fail on a SectionReader
		m := member{name: clean(h.Name), typ: h.Typeflag, link: h.Linkname, off: off}
		if h.Typeflag == tar.TypeReg {
			m.size = h.Size
			if h.Size > s.size-off { // not off+h.Size: that can overflow
				return nil, fmt.Errorf("index archive %s: member %s: %w", s.path, h.Name, ErrTruncated)
			}
		}
		idx[m.name] = m
	}
}

// clean normalises a member path: no leading "./" or "/", no "." or ".."
// steps that can be folded.
func clean(p string) string {
	p = path.Clean("/" + p)
	return p[1:]
}

// resolve follows links from the member named p to a regular member.
func (s *Source) resolve(idx map[string]member, p string) (member, error) {
	want := p
	p = clean(p)
	for range maxLinkHops {
		m, ok := idx[p]
		if !ok {
			return member{}, fmt.Errorf("archive %s: member %s: %w", s.path, want, ErrMissingMember)
		}
		switch m.typ {
		case tar.TypeReg:
			return m, nil
		case tar.TypeLink:
			p = clean(m.link)
		case tar.TypeSymlink:
			t := m.link
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir(m.name), t)
			}
			p = clean(t)
		}
	}
	return member{}, fmt.Errorf("archive %s: member %s: more than %d links: %w", s.path, want, maxLinkHops, ErrMissingMember)
}

// readMember reads a whole (small) member.
func (s *Source) readMember(m member, limit int64) ([]byte, error) {
	if m.size > limit {
		return nil, fmt.Errorf("archive %s: member %s is %d bytes, more than the %d allowed", s.path, m.name, m.size, limit)
	}
	b := make([]byte, m.size)
	if _, err := s.ra.ReadAt(b, m.off); err != nil {
		return nil, fmt.Errorf("archive %s: read member %s: %w", s.path, m.name, err)
	}
	return b, nil
}

type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// load reads manifest.json, or without one an OCI image layout's
// index.json, then the config, and resolves the layers.
func (s *Source) load(idx map[string]member) error {
	mm, ok := idx["manifest.json"]
	if !ok {
		if _, ok := idx["index.json"]; ok {
			return s.loadLayout(idx)
		}
		if _, legacy := idx["repositories"]; legacy {
			return fmt.Errorf("archive %s: %w", s.path, ErrLegacyFormat)
		}
		return fmt.Errorf("archive %s: %w", s.path, ErrNoManifest)
	}
	mm, err := s.resolve(idx, mm.name)
	if err != nil {
		return err
	}
	raw, err := s.readMember(mm, maxManifest)
	if err != nil {
		return err
	}
	var man []manifestEntry
	if err := json.Unmarshal(raw, &man); err != nil {
		return fmt.Errorf("archive %s: member manifest.json: %w: %w", s.path, ErrBadManifest, err)
	}
	if len(man) == 0 {
		return fmt.Errorf("archive %s: member manifest.json: %w: it lists no image", s.path, ErrBadManifest)
	}
	e := man[0]
	if e.Config == "" {
		return fmt.Errorf("archive %s: member manifest.json: %w: no Config", s.path, ErrBadManifest)
	}

	s.img = stage.Image{Name: "unknown", Tag: "unknown"}
	if len(e.RepoTags) > 0 {
		// Split at the last ':', as the original does (even in a port).
		rt := e.RepoTags[0]
		if i := strings.LastIndex(rt, ":"); i >= 0 {
			s.img = stage.Image{Name: rt[:i], Tag: rt[i+1:]}
		} else {
			s.img = stage.Image{Name: rt, Tag: "latest"}
		}
	}

	cm, err := s.resolve(idx, e.Config)
	if err != nil {
		return err
	}
	if s.config, err = s.readMember(cm, maxConfig); err != nil {
		return err
	}
	s.configName = e.Config
	return s.addLayers(idx, e.Layers)
}

// addLayers resolves the layers at the given member paths and names them.
func (s *Source) addLayers(idx map[string]member, paths []string) error {
	diffIDs := configDiffIDs(s.config, len(paths))
	for i, lp := range paths {
		m, err := s.resolve(idx, lp)
		if err != nil {
			return err
		}
		l := layer{mpath: lp, m: m}
		if diffIDs != nil {
			l.diffID = diffIDs[i]
		}
		l.name = layerName(lp, l.diffID)
		if l.comp, err = s.sniff(m); err != nil {
			return err
		}
		s.layers = append(s.layers, l)
	}
	return nil
}

// splitRef splits a reference "name[:tag][@digest]" (transport/reference's
// ParseName: the tag follows the last ':' after the last '/'; "latest"
// without a tag or digest), for the names OCI layouts record.
func splitRef(rt string) stage.Image {
	r, err := reference.ParseName(rt)
	if err != nil {
		return stage.Image{Name: rt, Tag: reference.DefaultTag}
	}
	return stage.Image{Name: r.Repo, Tag: r.Identifier()}
}

// layerName is the name occystrap gives the layer at manifest path p. The
// original's rule where it gives one: the hex of blobs/sha256/X, or the
// directory of X/layer.tar. Where it gives none (the flat layouts of crane
// and skopeo: X.tar, X.tar.gz, ...), the hex of the layer's DiffID; without
// a DiffID, the path itself (Emit then refuses the archive).
func layerName(p string, diffID digest.Digest) string {
	if strings.HasPrefix(p, "blobs/") && strings.Count(p, "/") == 2 {
		return path.Base(p)
	}
	if dir, base := path.Split(p); base == "layer.tar" && dir != "" {
		return strings.TrimSuffix(dir, "/")
	}
	if diffID != "" {
		return diffID.Encoded()
	}
	return p
}

// configDiffIDs returns the config's rootfs.diff_ids when they are valid
// and there is one per layer, else nil (Emit then refuses the archive,
// unless the source is Unchecked).
func configDiffIDs(cfg []byte, n int) []digest.Digest {
	var c struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(cfg, &c) != nil || len(c.RootFS.DiffIDs) != n {
		return nil
	}
	for _, d := range c.RootFS.DiffIDs {
		if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
			return nil
		}
	}
	return c.RootFS.DiffIDs
}

// checkConfig validates the config before anything is sent: JSON of the
// image-spec's types, a rootfs of type layers, one sha256 DiffID per layer.
func (s *Source) checkConfig() error {
	where := fmt.Sprintf("archive %s: config %s", s.path, s.configName)
	var c v1.Image
	if err := json.Unmarshal(s.config, &c); err != nil {
		return fmt.Errorf("%s: %w: %w", where, ErrBadConfig, err)
	}
	if c.RootFS.Type != "layers" {
		return fmt.Errorf("%s: %w: rootfs.type is %q, not \"layers\"", where, ErrBadConfig, c.RootFS.Type)
	}
	if len(c.RootFS.DiffIDs) != len(s.layers) {
		return fmt.Errorf("%s: %w: %d DiffIDs for %d layers", where, ErrBadConfig, len(c.RootFS.DiffIDs), len(s.layers))
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return fmt.Errorf("%s: %w: DiffID %d %q is not a sha256 digest", where, ErrBadConfig, i, d)
		}
	}
	return nil
}

// Image is the image the archive holds.
func (s *Source) Image() stage.Image { return s.img }

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "tar"}
}

// Close closes the archive and removes its decompressed copy, if any.
// Bodies opened before stay readable until they are closed (each has its
// own descriptor).
func (s *Source) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if s.spool {
		if rerr := os.Remove(s.file); err == nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("close archive %s: %w", s.path, err)
	}
	return nil
}

// Emit sends the config and then the layers, in manifest order.
func (s *Source) Emit(ctx context.Context, out chan<- stage.Item) error {
	log := zerolog.Ctx(ctx).With().Str("archive", s.path).Logger()
	log.Debug().Str("config", s.configName).Int("layers", len(s.layers)).Msg("Reading image from tarball")
	if !s.unchecked {
		if err := s.checkConfig(); err != nil {
			return err
		}
	}
	cfg := stage.Item{Seq: -1, Kind: stage.KindConfig, Name: s.configName, Size: int64(len(s.config)), Data: s.config}
	if err := stage.Send(ctx, out, cfg); err != nil {
		return err
	}
	// This source counts what is read of the archive: the layers as stored.
	acc := accounting.FromContext(ctx)
	acc.SetSourceFed()
	for _, l := range s.layers {
		if s.has == nil || !s.has(l.name) { // a layer the output has is not read
			acc.Expect(l.m.size)
		}
		acc.AddSize(l.m.size)
	}
	for i, l := range s.layers {
		size := l.m.size
		if l.comp != none {
			size = -1
		}
		it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: l.name, DiffID: l.diffID, Size: size, Body: s.body(l, acc)}
		if s.has != nil && s.has(l.name) {
			it.Body, it.Size = nil, -1
			log.Debug().Str("layer", l.name).Msg("The output has the layer; skipping it")
		}
		log.Debug().Str("layer", l.mpath).Str("compression", l.comp.String()).Msg("Emitting layer")
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}
