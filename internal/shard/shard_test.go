package shard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kolla is a Kolla-like corpus: every image on one base (two layers), in
// groups that share a group layer, each with a layer of its own and a
// config.
func kolla(images, group int, baseKB, groupKB, ownKB int64) []Image {
	var out []Image
	for i := range images {
		g := i / group
		out = append(out, Image{
			Name: fmt.Sprintf("kolla/g%02d-img%03d:2025.1", g, i),
			Layers: []Blob{
				{"sha256:os", baseKB * 2 / 3 << 10},
				{"sha256:kolla-base", baseKB / 3 << 10},
				{fmt.Sprintf("sha256:group-%d", g), groupKB << 10},
				{fmt.Sprintf("sha256:own-%d", i), ownKB << 10},
			},
			Config: Blob{fmt.Sprintf("sha256:config-%d", i), 4 << 10},
		})
	}
	return out
}

func TestPlanIsDeterministicAndComplete(t *testing.T) {
	imgs := kolla(120, 6, 300<<10, 40<<10, 10<<10)
	want := New(imgs, 4)
	for seed := range uint64(5) {
		shuffled := slices.Clone(imgs)
		rand.New(rand.NewPCG(seed, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if diff := cmp.Diff(want, New(shuffled, 4)); diff != "" {
			t.Fatalf("plan depends on input order (-first +shuffled):\n%s", diff)
		}
	}
	seen := map[string]int{}
	for k, s := range want.Shards {
		for _, name := range s.Images {
			seen[name]++
			if got := want.Shard(name); got != k {
				t.Errorf("Shard(%s) = %d, want %d", name, got, k)
			}
		}
	}
	for _, im := range imgs {
		if seen[im.Name] != 1 {
			t.Errorf("%s is in %d shards, want exactly 1", im.Name, seen[im.Name])
		}
	}
	if len(seen) != len(imgs) {
		t.Errorf("%d images planned, want %d", len(seen), len(imgs))
	}
}

// A corpus whose shared base is small next to the rest (many images, as a
// whole Kolla release): affinity shards fetch at most 1.15x a single run,
// less than round-robin, and stay balanced.
func TestPlanKeepsSharingTogether(t *testing.T) {
	for _, n := range []int{2, 4, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			imgs := kolla(200, 10, 100<<10, 50<<10, 20<<10)
			p := New(imgs, n)
			ratio := float64(p.Bytes) / float64(p.SingleBytes)
			t.Logf("%d shards: %d bytes (%.3fx single), round-robin %.3fx", n, p.Bytes, ratio, float64(p.RoundRobinBytes)/float64(p.SingleBytes))
			if ratio > 1.15 {
				t.Errorf("affinity shards fetch %.3fx a single run, want at most 1.15x", ratio)
			}
			if p.Bytes >= p.RoundRobinBytes {
				t.Errorf("affinity %d bytes, round-robin %d: no saving", p.Bytes, p.RoundRobinBytes)
			}
			mean := p.Bytes / int64(n)
			for k, s := range p.Shards {
				if s.Bytes > mean*13/10 || s.Bytes < mean*7/10 {
					t.Errorf("shard %d fetches %d bytes, mean %d: unbalanced", k, s.Bytes, mean)
				}
			}
		})
	}
}

func TestPlanEdges(t *testing.T) {
	imgs := kolla(3, 3, 10, 10, 10)
	p := New(imgs, 8) // more shards than images: some stay empty
	if len(p.Shards) != 8 {
		t.Fatalf("%d shards, want 8", len(p.Shards))
	}
	n := 0
	for _, s := range p.Shards {
		n += len(s.Images)
		if s.Images == nil {
			t.Error("an empty shard has nil Images (encodes as null)")
		}
	}
	if n != 3 {
		t.Errorf("%d images planned, want 3", n)
	}
	if one := New(imgs, 1); one.Bytes != one.SingleBytes || len(one.Shards[0].Images) != 3 {
		t.Errorf("one shard: %+v", one)
	}
	if e := New(nil, 3); e.Bytes != 0 || len(e.Shards) != 3 {
		t.Errorf("no images: %+v", e)
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		k, n int
		ok   bool
	}{{"0/4", 0, 4, true}, {"3/4", 3, 4, true}, {"4/4", 0, 0, false}, {"-1/4", 0, 0, false}, {"1", 0, 0, false}, {"a/b", 0, 0, false}, {"0/0", 0, 0, false}} {
		k, n, err := ParseSpec(tc.in)
		if (err == nil) != tc.ok || k != tc.k || n != tc.n {
			t.Errorf("ParseSpec(%q) = %d, %d, %v", tc.in, k, n, err)
		}
	}
}
