package shard

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Blob is one blob an image needs: a layer or its config.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Image is one image of the run: its name (unique in the run) and the
// blobs it fetches, layers in order, then the config.
type Image struct {
	Name   string `json:"name"`
	Layers []Blob `json:"layers"`
	Config Blob   `json:"config"`
}

// Shard is one shard of a plan.
type Shard struct {
	// Images are the names of its images, sorted.
	Images []string `json:"images"`
	// Bytes is what the shard fetches: each distinct blob of its images once.
	Bytes int64 `json:"bytes"`
}

// Plan is the assignment of images to shards, with what it costs.
type Plan struct {
	Shards []Shard `json:"shards"`
	// Bytes is what all shards fetch together; SingleBytes what one
	// process running every image fetches (each distinct blob once);
	// RoundRobinBytes what shards made by dealing the images out in name
	// order would fetch together.
	Bytes           int64 `json:"bytes"`
	SingleBytes     int64 `json:"single_bytes"`
	RoundRobinBytes int64 `json:"round_robin_bytes"`
}

// Shard returns the index of the shard holding image name, or -1.
func (p Plan) Shard(name string) int {
	for i, s := range p.Shards {
		if _, ok := slices.BinarySearch(s.Images, name); ok {
			return i
		}
	}
	return -1
}

// ParseSpec reads "K/N" (0 <= K < N), as --shard takes it.
func ParseSpec(s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("shard %q: want K/N with 0 <= K < N, e.g. 0/4", s)
	}
	return k, n, nil
}

// node is a trie node: the layer reached by a path of layers.
type node struct {
	blob     Blob
	children []*node // in order of first appearance (images are sorted)
	images   []int   // images whose layer list ends here
	// under is every image at or below the node, and bytes the distinct
	// bytes of their blobs below the node (the node's own layer included).
	under []int
	bytes int64
}

// New plans images into n shards (n >= 1).
func New(images []Image, n int) Plan {
	n = max(n, 1)
	imgs := slices.Clone(images)
	slices.SortFunc(imgs, func(a, b Image) int { return cmp.Compare(a.Name, b.Name) })

	root := &node{}
	for i, im := range imgs {
		cur := root
		for _, l := range im.Layers {
			var next *node
			for _, c := range cur.children {
				if c.blob.Digest == l.Digest {
					next = c
					break
				}
			}
			if next == nil {
				next = &node{blob: l}
				cur.children = append(cur.children, next)
			}
			cur = next
		}
		cur.images = append(cur.images, i)
	}
	var fill func(*node)
	fill = func(nd *node) {
		nd.under = slices.Clone(nd.images)
		for _, c := range nd.children {
			fill(c)
			nd.under = append(nd.under, c.under...)
		}
		nd.bytes = bytesOf(imgs, nd.under, nil)
	}
	fill(root)
	single := root.bytes
	target := single / int64(n)

	// Cut the trie into units: sets of images kept together.
	var units [][]int
	var cut func(*node)
	cut = func(nd *node) {
		if nd.bytes <= target || len(nd.under) == 1 {
			units = append(units, nd.under)
			return
		}
		for _, i := range nd.images {
			units = append(units, []int{i})
		}
		for _, c := range nd.children {
			cut(c)
		}
	}
	cut(root)
	type unit struct {
		imgs  []int
		bytes int64
	}
	us := make([]unit, 0, len(units))
	for _, u := range units {
		if len(u) > 0 {
			us = append(us, unit{u, bytesOf(imgs, u, nil)})
		}
	}
	slices.SortStableFunc(us, func(a, b unit) int {
		if c := cmp.Compare(b.bytes, a.bytes); c != 0 {
			return c
		}
		return cmp.Compare(imgs[a.imgs[0]].Name, imgs[b.imgs[0]].Name)
	})

	// Bin-pack, largest unit first: into the shard it adds the fewest bytes
	// to among those it fits in (a tenth over the even share), else into
	// the shard whose fetched bytes end lowest.
	have := make([]map[string]bool, n)
	load := make([]int64, n)
	members := make([][]int, n)
	for i := range have {
		have[i] = map[string]bool{}
	}
	limit := target + target/10
	for _, u := range us {
		best, bestAdd, fits := -1, int64(0), false
		for s := range n {
			add := bytesOf(imgs, u.imgs, have[s])
			f := load[s]+add <= limit
			switch {
			case best < 0,
				f && !fits,
				f && fits && (add < bestAdd || add == bestAdd && load[s] < load[best]),
				!f && !fits && load[s]+add < load[best]+bestAdd:
				best, bestAdd, fits = s, add, f
			}
		}
		load[best] += bestAdd
		for _, i := range u.imgs {
			for _, b := range blobsOf(imgs[i]) {
				have[best][b.Digest] = true
			}
		}
		members[best] = append(members[best], u.imgs...)
	}

	p := Plan{SingleBytes: single}
	for s := range n {
		sh := Shard{Images: []string{}, Bytes: load[s]}
		for _, i := range members[s] {
			sh.Images = append(sh.Images, imgs[i].Name)
		}
		slices.Sort(sh.Images)
		p.Shards = append(p.Shards, sh)
		p.Bytes += load[s]
	}
	rr := make([][]int, n)
	for i := range imgs {
		rr[i%n] = append(rr[i%n], i)
	}
	for _, r := range rr {
		p.RoundRobinBytes += bytesOf(imgs, r, nil)
	}
	return p
}

func blobsOf(im Image) []Blob {
	if im.Config.Digest == "" {
		return im.Layers
	}
	return append(slices.Clip(im.Layers), im.Config)
}

// bytesOf is the distinct bytes of the images' blobs not in have.
func bytesOf(imgs []Image, which []int, have map[string]bool) int64 {
	seen := map[string]bool{}
	var n int64
	for _, i := range which {
		for _, b := range blobsOf(imgs[i]) {
			if seen[b.Digest] || have[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			n += b.Size
		}
	}
	return n
}
