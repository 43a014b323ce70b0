package harness

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/bench/internal/corpus"
	"github.com/occystrap/occystrap/bench/internal/env"
)

// Scenario is one benchmarked data movement.
type Scenario struct {
	Name string
	Desc string
	// images are the corpus images the scenario moves.
	images func(c *corpus.Corpus) []corpus.Image
	// dest: the scenario pushes to a fresh registry each run.
	dest bool
	// fromTar: the input is the tar archive (the floor reads the file).
	fromTar bool
	// inflates: every layer is decompressed (a floor that gunzips with Go
	// runs too).
	inflates bool
	// ours gives occystrap's SOURCE and DESTINATION.
	ours func(r *runCtx) (src, dst string)
	// peers gives each peer's argv (after the tool name).
	peers map[string]func(r *runCtx) []string
	// check verifies a run's output.
	check func(r *runCtx) error
	// shards, when not 0, also runs ours as that many shard processes at
	// once (`bench shards`), by layer affinity and round-robin.
	shards int
}

// runCtx is one run's context.
type runCtx struct {
	h    *Harness
	out  string      // a fresh directory for the run's output
	dest *env.Server // the push destination, when the scenario has one
}

func (r *runCtx) src() string { return r.h.Env.Source.Host }

func (r *runCtx) ref(im corpus.Image) string { return r.src() + "/" + im.Repo + ":" + im.Tag }

func single(c *corpus.Corpus) []corpus.Image { return c.Images[:1] }
func all(c *corpus.Corpus) []corpus.Image    { return c.Images }

// Scenarios are every scenario, in the table's order.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name: "quay-bulk-dir", Desc: "bulk quay:// → dir://?unique_names=true (the motivating case)",
			images: all, inflates: true,
			ours: func(r *runCtx) (string, string) {
				return "quay://" + corpus.Namespace + "?host=" + r.src(), "dir://" + r.out + "/out?unique_names=true"
			},
			check: func(r *runCtx) error { return checkDir(r.h.Corpus, all(r.h.Corpus), r.out+"/out", true) },
		},
		{
			Name: "quay-bulk-dir-shards", Desc: "bulk quay:// → one dir:// as 1 process and as 4 shard processes (layer affinity, round-robin)",
			images: all, shards: 4,
			ours: func(r *runCtx) (string, string) {
				return "quay://" + corpus.Namespace + "?host=" + r.src(), "dir://" + r.out + "/out?unique_names=true"
			},
			check: func(r *runCtx) error { return checkDir(r.h.Corpus, all(r.h.Corpus), r.out+"/out", true) },
		},
		{
			Name: "registry-dir", Desc: "single registry:// → dir://",
			images: single, inflates: true,
			ours: func(r *runCtx) (string, string) {
				return "registry://" + r.ref(r.h.Corpus.Images[0]), "dir://" + r.out + "/out"
			},
			peers: map[string]func(r *runCtx) []string{
				"crane": func(r *runCtx) []string {
					return []string{"pull", "--format=oci", r.ref(r.h.Corpus.Images[0]), r.out + "/out"}
				},
				"regctl": func(r *runCtx) []string {
					return []string{"image", "copy", r.ref(r.h.Corpus.Images[0]), "ocidir://" + r.out + "/out:latest"}
				},
				"skopeo": func(r *runCtx) []string {
					return []string{"copy", "-q", "docker://" + r.ref(r.h.Corpus.Images[0]), "dir:" + r.out + "/out"}
				},
			},
			check: func(r *runCtx) error { return checkDir(r.h.Corpus, single(r.h.Corpus), r.out+"/out", false) },
		},
		{
			Name: "registry-registry", Desc: "single registry:// → registry://",
			images: single, dest: true,
			ours: func(r *runCtx) (string, string) {
				im := r.h.Corpus.Images[0]
				return "registry://" + r.ref(im), "registry://" + r.dest.Host + "/" + im.Repo + ":" + im.Tag
			},
			peers: map[string]func(r *runCtx) []string{
				"crane": func(r *runCtx) []string {
					return []string{"copy", r.ref(r.h.Corpus.Images[0]), r.destRef(r.h.Corpus.Images[0])}
				},
				"regctl": func(r *runCtx) []string {
					return []string{"image", "copy", r.ref(r.h.Corpus.Images[0]), r.destRef(r.h.Corpus.Images[0])}
				},
				"skopeo": func(r *runCtx) []string {
					return []string{"copy", "-q", "docker://" + r.ref(r.h.Corpus.Images[0]), "docker://" + r.destRef(r.h.Corpus.Images[0])}
				},
			},
			check: func(r *runCtx) error { return checkRegistry(r.h.Corpus, single(r.h.Corpus), r.dest, "") },
		},
		{
			Name: "quay-bulk-registry", Desc: "bulk quay:// → registry:// (every image keeps its name)",
			images: all, dest: true,
			ours: func(r *runCtx) (string, string) {
				return "quay://" + corpus.Namespace + "?host=" + r.src(), "registry://" + r.dest.Host + "/mirror"
			},
			check: func(r *runCtx) error { return checkRegistry(r.h.Corpus, all(r.h.Corpus), r.dest, "mirror/") },
		},
		{
			Name: "tar-dir", Desc: "tar:// (docker save) → dir://",
			images: single, fromTar: true,
			ours:  func(r *runCtx) (string, string) { return "tar://" + r.h.Archive, "dir://" + r.out + "/out" },
			check: func(r *runCtx) error { return checkDir(r.h.Corpus, single(r.h.Corpus), r.out+"/out", false) },
		},
		{
			Name: "registry-tar", Desc: "single registry:// → tar://",
			images: single, inflates: true,
			ours: func(r *runCtx) (string, string) {
				return "registry://" + r.ref(r.h.Corpus.Images[0]), "tar://" + r.out + "/out.tar"
			},
			peers: map[string]func(r *runCtx) []string{
				"crane": func(r *runCtx) []string { return []string{"pull", r.ref(r.h.Corpus.Images[0]), r.out + "/out.tar"} },
				"regctl": func(r *runCtx) []string {
					return []string{"image", "export", r.ref(r.h.Corpus.Images[0]), r.out + "/out.tar"}
				},
				"skopeo": func(r *runCtx) []string {
					im := r.h.Corpus.Images[0]
					return []string{"copy", "-q", "docker://" + r.ref(im), "docker-archive:" + r.out + "/out.tar:" + im.Repo + ":" + im.Tag}
				},
			},
			check: func(r *runCtx) error { return checkTar(r.h.Corpus, r.h.Corpus.Images[0], r.out+"/out.tar") },
		},
	}
}

func (r *runCtx) destRef(im corpus.Image) string { return r.dest.Host + "/" + im.Repo + ":" + im.Tag }

// diffIDs are the distinct layer DiffIDs (hex) of imgs.
func diffIDs(imgs []corpus.Image) []string {
	var out []string
	for _, im := range imgs {
		for _, l := range im.Layers {
			if h := l.DiffID.Encoded(); !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return out
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkDir: every layer.tar holds one of the images' layers, each layer is
// there once, and every image has its manifest in the catalog.
func checkDir(c *corpus.Corpus, imgs []corpus.Image, dir string, unique bool) error {
	var got []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "layer.tar" {
			h, err := sha256File(p)
			if err != nil {
				return err
			}
			got = append(got, h)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	slices.Sort(got)
	if want := diffIDs(imgs); !slices.Equal(got, want) {
		return fmt.Errorf("check %s: layer.tar contents %d %v, want the %d layers %v", dir, len(got), got, len(want), want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	var cat map[string]map[string]string
	if err := json.Unmarshal(b, &cat); err != nil {
		return fmt.Errorf("check %s: catalog: %w", dir, err)
	}
	for _, im := range imgs {
		name := im.Repo
		m, ok := cat[name][im.Tag]
		if !ok {
			// Single-image inputs may be catalogued under the name they were
			// asked for; accept the last path part too.
			for k, v := range cat {
				if strings.HasSuffix(name, k) || strings.HasSuffix(k, name) {
					m, ok = v[im.Tag], v[im.Tag] != ""
				}
			}
		}
		if !ok {
			return fmt.Errorf("check %s: %s:%s not in catalog.json %s", dir, name, im.Tag, b)
		}
		if _, err := os.Stat(filepath.Join(dir, m)); err != nil {
			return fmt.Errorf("check %s: %w", dir, err)
		}
		if unique && !strings.HasPrefix(m, "manifest-") {
			return fmt.Errorf("check %s: %s's manifest is %s, want manifest-*.json", dir, name, m)
		}
	}
	return nil
}

// checkTar: the archive holds the image's layers (as uncompressed tars)
// and a manifest.json.
func checkTar(c *corpus.Corpus, im corpus.Image, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("check %s: %w", p, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var got []string
	manifest := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		switch {
		case h.Name == "manifest.json":
			manifest = true
		case strings.HasSuffix(h.Name, "/layer.tar"):
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return fmt.Errorf("check %s: %w", p, err)
			}
			got = append(got, hex.EncodeToString(sum.Sum(nil)))
		}
	}
	slices.Sort(got)
	if want := diffIDs([]corpus.Image{im}); !slices.Equal(got, want) {
		return fmt.Errorf("check %s: layers %v, want %v", p, got, want)
	}
	if !manifest {
		return fmt.Errorf("check %s: no manifest.json", p)
	}
	return nil
}

// checkRegistry: each image's manifest is on the destination (under
// prefix+repo, or prefix+the repo's last part) with the same config and
// every layer blob present.
func checkRegistry(c *corpus.Corpus, imgs []corpus.Image, dest *env.Server, prefix string) error {
	cl := dest.Client()
	for _, im := range imgs {
		var man struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		var repo string
		for _, cand := range []string{prefix + im.Repo, prefix + im.Repo[strings.LastIndex(im.Repo, "/")+1:]} {
			req, _ := http.NewRequest(http.MethodGet, "https://"+dest.Direct+"/v2/"+cand+"/manifests/"+im.Tag, nil)
			req.Header.Set("Accept", corpus.MediaTypeManifest+","+v1.MediaTypeImageManifest)
			resp, err := cl.Do(req)
			if err != nil {
				return fmt.Errorf("check dest: %w", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(b, &man); err != nil {
					return fmt.Errorf("check dest %s: %w", cand, err)
				}
				repo = cand
				break
			}
		}
		if repo == "" {
			return fmt.Errorf("check dest: %s:%s is not on the destination", prefix+im.Repo, im.Tag)
		}
		if man.Config.Digest != im.Config.String() || len(man.Layers) != len(im.Layers) {
			return fmt.Errorf("check dest %s: config %s with %d layers, want %s with %d", repo, man.Config.Digest, len(man.Layers), im.Config, len(im.Layers))
		}
		for _, l := range man.Layers {
			resp, err := cl.Head("https://" + dest.Direct + "/v2/" + repo + "/blobs/" + l.Digest)
			if err != nil {
				return fmt.Errorf("check dest: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("check dest %s: blob %s: %s", repo, l.Digest, resp.Status)
			}
		}
	}
	return nil
}
