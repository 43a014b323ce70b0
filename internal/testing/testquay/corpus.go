package testquay

import (
	"context"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// Corpus describes images to seed: Images images in Groups groups (image i
// is in group i mod Groups); each has Common layers shared by every image,
// Group layers shared within its group and Own layers of its own, base first
// in that order.
type Corpus struct {
	Namespace string // default "openstack.kolla"
	Images    int
	Groups    int // default 1
	Common    int
	Group     int
	Own       int // default 1
	// LayerSize is the random content of each layer (default 16 KiB).
	LayerSize int
	Tag       string // default "latest"
	// Name gives image i's repository name (default "image-%03d").
	Name func(i int) string
	// Pushed gives image i's push time: the tag's start_ts and the
	// repository's last_modified (default 2026-03-15 plus i minutes).
	Pushed func(i int) time.Time
	// Seed varies the random content between corpora (default 0).
	Seed uint64
}

// SeededImage is one image of a seeded corpus.
type SeededImage struct {
	Repo  string // "NS/NAME"
	Name  string // NAME
	Tag   string
	Image testregistry.Image
}

// Seeded is what Seed made.
type Seeded struct {
	Images []SeededImage
	// Shared lists the layer digests more than one image uses, with how
	// many images use each.
	Shared map[digest.Digest]int
}

// Seed pushes the corpus into reg and registers it with the emulator.
func (s *Server) Seed(ctx context.Context, reg *testregistry.Registry, c Corpus) (Seeded, error) {
	if c.Namespace == "" {
		c.Namespace = "openstack.kolla"
	}
	if c.Groups <= 0 {
		c.Groups = 1
	}
	if c.Own <= 0 {
		c.Own = 1
	}
	if c.LayerSize <= 0 {
		c.LayerSize = 16 << 10
	}
	if c.Tag == "" {
		c.Tag = "latest"
	}
	if c.Name == nil {
		c.Name = func(i int) string { return fmt.Sprintf("image-%03d", i) }
	}
	if c.Pushed == nil {
		base := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
		c.Pushed = func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	}
	layers := func(seed uint64, n int) ([]testregistry.Layer, error) {
		if n == 0 {
			return nil, nil
		}
		img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: seed, Layers: n, LayerSize: c.LayerSize})
		if err != nil {
			return nil, err
		}
		return img.Layers, nil
	}
	salt := c.Seed*1_000_003 + 7_000_000
	common, err := layers(salt, c.Common)
	if err != nil {
		return Seeded{}, err
	}
	groups := make([][]testregistry.Layer, c.Groups)
	for g := range groups {
		if groups[g], err = layers(salt+1+uint64(g), c.Group); err != nil {
			return Seeded{}, err
		}
	}
	out := Seeded{Shared: map[digest.Digest]int{}}
	uses := map[digest.Digest]int{}
	for i := range c.Images {
		own, err := layers(salt+100_000+uint64(i), c.Own)
		if err != nil {
			return Seeded{}, err
		}
		ls := append(append(append([]testregistry.Layer(nil), common...), groups[i%c.Groups]...), own...)
		img, err := testregistry.Compose(ls, v1.Platform{OS: "linux", Architecture: "amd64"}, false)
		if err != nil {
			return Seeded{}, err
		}
		name := c.Name(i)
		repo := c.Namespace + "/" + name
		if err := reg.Push(ctx, repo, c.Tag, img); err != nil {
			return Seeded{}, err
		}
		at := c.Pushed(i)
		var size int64
		for _, l := range img.Layers {
			size += int64(len(l.Blob))
			uses[l.Digest]++
		}
		s.mu.Lock()
		rp, ok := s.repos[repo]
		if !ok {
			rp = &Repo{Namespace: c.Namespace, Name: name}
			s.repos[repo] = rp
		}
		if rp.LastModified == nil || rp.LastModified.Before(at) {
			t := at
			rp.LastModified = &t
		}
		s.mu.Unlock()
		s.AddTag(c.Namespace, name, Tag{Name: c.Tag, ManifestDigest: img.Digest, StartTS: at, Size: size})
		out.Images = append(out.Images, SeededImage{Repo: repo, Name: name, Tag: c.Tag, Image: img})
	}
	for d, n := range uses {
		if n > 1 {
			out.Shared[d] = n
		}
	}
	return out, nil
}
