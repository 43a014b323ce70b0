package harness

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/occystrap/occystrap/bench/internal/corpus"
	"github.com/occystrap/occystrap/bench/internal/env"
)

// Variant is one -j/-J setting of ours.
type Variant struct{ J, BigJ int }

func (v Variant) String() string { return fmt.Sprintf("occystrap -j%d -J%d", v.J, v.BigJ) }

// Harness holds what every run needs.
type Harness struct {
	// Bin is the occystrap binary; Self is this benchmark's binary (it runs
	// the floor as `Self floor ...`).
	Bin, Self string
	Corpus    *corpus.Corpus
	Env       *env.Env
	// Tmp holds run outputs and the tar archive.
	Tmp string
	// Archive is the docker-save archive of the first image (tar://).
	Archive string
	Reps    int
	// Variants of ours; the first is "ours" in the ratios.
	Variants []Variant
	// Peers to try (each used when found on PATH).
	Peers []string
	// CPUProfile and MemProfile, when set, get the profiles of ours (the
	// first variant's last repetition), suffixed by the scenario name.
	CPUProfile, MemProfile string
	// Check verifies every tool's output on the first repetition.
	Check bool
	Log   io.Writer
}

// ToolResult is one tool's result in one scenario.
type ToolResult struct {
	Tool    string   `json:"tool"`
	Kind    string   `json:"kind"` // ours, peer or floor
	Status  string   `json:"status"`
	Samples []Sample `json:"samples,omitempty"`
	Summary Summary  `json:"summary"`
	// VsFloor is this tool's median wall time over the floor's.
	VsFloor float64 `json:"vs_floor,omitempty"`
	// OursOver is ours' median wall time over this tool's (peers: below 1
	// means ours is faster).
	OursOver float64 `json:"ours_over,omitempty"`
}

// Result is one scenario's results.
type Result struct {
	Scenario    string       `json:"scenario"`
	Desc        string       `json:"description"`
	Images      int          `json:"images"`
	UniqueBlobs int          `json:"unique_blobs"`
	BlobMB      float64      `json:"unique_blob_mib"`
	Tools       []ToolResult `json:"tools"`
}

// Status values.
const (
	StatusOK          = "ok"
	StatusUnsupported = "unsupported by this build"
)

// Prepare writes the tar:// archive.
func (h *Harness) Prepare() error {
	h.Archive = filepath.Join(h.Tmp, "image.tar")
	return writeArchive(h.Corpus, h.Corpus.Images[0], h.Archive)
}

// Run runs one scenario with every tool.
func (h *Harness) Run(ctx context.Context, sc Scenario) (Result, error) {
	imgs := sc.images(h.Corpus)
	blobs, err := corpus.UniqueBlobs(imgs, h.Corpus)
	if err != nil {
		return Result{}, err
	}
	res := Result{Scenario: sc.Name, Desc: sc.Desc, Images: len(imgs), UniqueBlobs: len(blobs)}
	var size int64
	for _, b := range blobs {
		size += b.Size
	}
	res.BlobMB = float64(size) / (1 << 20)

	// The floor: every unique blob once, at full concurrency, discarded.
	floorArgs := []string{h.Self, "floor", "--ca", h.Env.CAFile, "--host", h.Env.Source.Host}
	if sc.fromTar {
		floorArgs = []string{h.Self, "floor", "--file", h.Archive}
	} else {
		seen := map[string]bool{}
		for _, im := range imgs {
			for _, d := range append([]string{im.Config.String()}, layerDigests(im)...) {
				if !seen[d] {
					seen[d] = true
					floorArgs = append(floorArgs, im.Repo+"@"+d)
				}
			}
		}
	}
	res.Tools = append(res.Tools, h.runTool(ctx, sc, "floor", "floor", func(*runCtx) []string { return floorArgs }, nil, nil))

	for i, v := range h.Variants {
		v := v
		prof := i == 0
		res.Tools = append(res.Tools, h.runTool(ctx, sc, v.String(), "ours", func(r *runCtx) []string {
			src, dst := sc.ours(r)
			return []string{h.Bin, "-j", strconv.Itoa(v.J), "-J", strconv.Itoa(v.BigJ), "--log-format", "json", "process", src, dst}
		}, sc.check, func(last bool) []string {
			if !prof || !last {
				return nil
			}
			var e []string
			if h.CPUProfile != "" {
				e = append(e, "OCCYSTRAP_CPUPROFILE="+h.CPUProfile+"."+sc.Name)
			}
			if h.MemProfile != "" {
				e = append(e, "OCCYSTRAP_MEMPROFILE="+h.MemProfile+"."+sc.Name)
			}
			return e
		}))
	}
	if sc.shards > 0 && len(h.Variants) > 0 {
		v := h.Variants[0]
		for _, mode := range []string{ShardAffinity, ShardRoundRobin} {
			res.Tools = append(res.Tools, h.runTool(ctx, sc, fmt.Sprintf("%s %d shards %s", v, sc.shards, mode), "shards", func(r *runCtx) []string {
				src, dst := sc.ours(r)
				return []string{h.Self, "shards", "--n", strconv.Itoa(sc.shards), "--mode", mode, "--",
					h.Bin, "-j", strconv.Itoa(v.J), "-J", strconv.Itoa(v.BigJ), "--log-format", "json", "process", src, dst}
			}, sc.check, nil))
		}
	}
	for _, p := range h.Peers {
		args, ok := sc.peers[p]
		if !ok {
			continue
		}
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		res.Tools = append(res.Tools, h.runTool(ctx, sc, p, "peer", func(r *runCtx) []string { return append([]string{path}, args(r)...) }, nil, nil))
	}
	// Ratios.
	var floor, ours float64
	for _, t := range res.Tools {
		if t.Status != StatusOK {
			continue
		}
		if t.Kind == "floor" {
			floor = t.Summary.WallSec.Median
		}
		if t.Kind == "ours" && ours == 0 {
			ours = t.Summary.WallSec.Median
		}
	}
	for i := range res.Tools {
		t := &res.Tools[i]
		if t.Status != StatusOK || t.Summary.WallSec.Median == 0 {
			continue
		}
		if floor > 0 {
			t.VsFloor = t.Summary.WallSec.Median / floor
		}
		if ours > 0 && t.Kind != "floor" {
			t.OursOver = ours / t.Summary.WallSec.Median
		}
	}
	return res, nil
}

// runTool runs one tool Reps times.
func (h *Harness) runTool(ctx context.Context, sc Scenario, name, kind string, argv func(*runCtx) []string, check func(*runCtx) error, extraEnv func(last bool) []string) ToolResult {
	tr := ToolResult{Tool: name, Kind: kind, Status: StatusOK}
	for rep := 0; rep < h.Reps; rep++ {
		if err := ctx.Err(); err != nil {
			tr.Status = "interrupted"
			return tr
		}
		out, err := os.MkdirTemp(h.Tmp, "run-")
		if err != nil {
			tr.Status = "failed: " + err.Error()
			return tr
		}
		r := &runCtx{h: h, out: out}
		servers := []*env.Server{h.Env.Source}
		if sc.dest {
			if r.dest, err = h.Env.NewDest(ctx); err != nil {
				tr.Status = "failed: " + err.Error()
				return tr
			}
			servers = append(servers, r.dest)
		}
		home := filepath.Join(out, "home")
		_ = os.MkdirAll(home, 0o755)
		environ := append(os.Environ(), "SSL_CERT_FILE="+h.Env.CAFile, "HOME="+home, "DOCKER_CONFIG="+home+"/.docker",
			"OCCYSTRAP_TEMP_DIR="+out, "TMPDIR="+out)
		if extraEnv != nil {
			environ = append(environ, extraEnv(rep == h.Reps-1)...)
		}
		s, output, err := execMeasured(ctx, argv(r), environ, out, servers)
		if err == nil && check != nil && h.Check && rep == 0 {
			err = check(r)
		}
		if r.dest != nil {
			r.dest.Close()
		}
		_ = os.RemoveAll(out)
		if err != nil {
			if strings.Contains(output, "is not supported by this build") {
				tr.Status = StatusUnsupported
			} else {
				tr.Status = "failed: " + err.Error()
			}
			if h.Log != nil {
				fmt.Fprintf(h.Log, "  %-22s %s\n", name, firstLine(tr.Status))
			}
			return tr
		}
		tr.Samples = append(tr.Samples, s)
		if h.Log != nil {
			fmt.Fprintf(h.Log, "  %-22s rep %d: %.2fs wall, %.2fs cpu, %d MiB rss, %d requests, %d conns\n",
				name, rep+1, s.Wall.Seconds(), s.CPU.Seconds(), s.MaxRSS>>20, s.Net.Requests, s.Net.Conns)
		}
	}
	tr.Summary = summarise(tr.Samples)
	return tr
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// writeArchive writes im as a docker save archive (the legacy layout, what
// Docker 1.10 to 24 wrote): layers uncompressed.
func writeArchive(c *corpus.Corpus, im corpus.Image, p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	cfg, err := c.ReadBlob(im.Config)
	if err != nil {
		return err
	}
	cfgName := im.Config.Encoded() + ".json"
	if err := writeMember(tw, cfgName, int64(len(cfg)), strings.NewReader(string(cfg))); err != nil {
		return err
	}
	var layers []string
	for _, l := range im.Layers {
		name := l.DiffID.Encoded() + "/layer.tar"
		if err := copyLayer(tw, c.Blob(l.Digest), name, l.Raw); err != nil {
			return err
		}
		layers = append(layers, name)
	}
	man, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{im.Repo + ":" + im.Tag}, "Layers": layers}})
	if err != nil {
		return err
	}
	if err := writeMember(tw, "manifest.json", int64(len(man)), strings.NewReader(string(man))); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func writeMember(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

func copyLayer(tw *tar.Writer, blob, name string, raw int64) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	if err := writeMember(tw, name, raw, zr); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// ErrFailed is returned when some tool failed.
var ErrFailed = errors.New("some runs failed")

func layerDigests(im corpus.Image) []string {
	var out []string
	for _, l := range im.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}
