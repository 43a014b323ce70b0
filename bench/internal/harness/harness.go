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
	"regexp"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/occystrap/occystrap/bench/internal/corpus"
	"github.com/occystrap/occystrap/bench/internal/env"
)

// Variant is one -j/-J setting of ours, run with OCCYSTRAP_INFLATE=Inflate
// ("" leaves it unset). Inflater is the inflater that ran (Prepare probes
// it: with auto, it depends on igzip being on PATH).
type Variant struct {
	J, BigJ  int
	Inflate  string
	Inflater string
	// Bin, when set, is another occystrap binary (an A/B baseline).
	Bin string
}

func (v Variant) String() string {
	s := fmt.Sprintf("occystrap -j%d -J%d", v.J, v.BigJ)
	if v.Bin != "" {
		s = fmt.Sprintf("baseline -j%d -J%d", v.J, v.BigJ)
	}
	switch {
	case v.Inflater != "" && v.Inflate != "" && v.Inflate != v.Inflater:
		s += " " + v.Inflate + "=" + v.Inflater // auto=isal
	case v.Inflater != "":
		s += " " + v.Inflater
	}
	return s
}

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
	// Inflater is the gzip inflater ours ran with (go, isal or isal-cgo).
	Inflater string `json:"inflater,omitempty"`
	// VsFloor is this tool's median wall time over the floor's.
	VsFloor float64 `json:"vs_floor,omitempty"`
	// VsGunzipFloor is this tool's median wall time over the floor that
	// also gunzips every layer with Go (scenarios that inflate).
	VsGunzipFloor float64 `json:"vs_go_gunzip_floor,omitempty"`
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

// Prepare writes the tar:// archive and probes which inflater each variant
// runs with (a --verbose run of the archive, which logs the choice).
func (h *Harness) Prepare(ctx context.Context) error {
	h.Archive = filepath.Join(h.Tmp, "image.tar")
	if err := writeArchive(h.Corpus, h.Corpus.Images[0], h.Archive); err != nil {
		return err
	}
	for i := range h.Variants {
		v := &h.Variants[i]
		out, err := os.MkdirTemp(h.Tmp, "probe-")
		if err != nil {
			return err
		}
		bin := h.Bin
		if v.Bin != "" {
			bin = v.Bin
		}
		cmd := exec.CommandContext(ctx, bin, "--verbose", "--log-format", "json", "process", "tar://"+h.Archive, "dir://"+out+"/out")
		cmd.Env = os.Environ()
		if v.Inflate != "" {
			cmd.Env = append(cmd.Env, "OCCYSTRAP_INFLATE="+v.Inflate)
		}
		b, err := cmd.CombinedOutput()
		_ = os.RemoveAll(out)
		if err != nil {
			return fmt.Errorf("probe the inflater of %s (OCCYSTRAP_INFLATE=%s): %w\n%s", v, v.Inflate, err, tail(string(b), 2000))
		}
		m := inflaterRE.FindSubmatch(b)
		if m == nil && v.Bin != "" {
			continue // a baseline from before the inflater was logged
		}
		if m == nil {
			return fmt.Errorf("probe the inflater of %s: no inflater in its debug log", v)
		}
		v.Inflater = string(m[1])
	}
	return nil
}

// inflaterRE finds the inflater in occystrap's debug line.
var inflaterRE = regexp.MustCompile(`"inflater":"([a-z-]+)"`)

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

	// The floor: every unique blob once, at full concurrency, discarded;
	// where the scenario inflates, also a floor that gunzips with Go.
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
	tools := []*tool{{name: "floor", kind: "floor", argv: func(*runCtx) []string { return floorArgs }}}
	if sc.inflates && !sc.fromTar {
		gz := append([]string{floorArgs[0], floorArgs[1], "--gunzip"}, floorArgs[2:]...)
		tools = append(tools, &tool{name: "floor+gunzip(go)", kind: "floor-gunzip", argv: func(*runCtx) []string { return gz }})
	}
	if sc.dest && !sc.fromTar {
		// Into a registry: a floor that also uploads each blob once, to the
		// run's fresh destination (ours/tool on its row is ours over it).
		tools = append(tools, &tool{name: "floor+upload", kind: "floor-upload", argv: func(r *runCtx) []string {
			return append([]string{floorArgs[0], floorArgs[1], "--upload-to", r.dest.Host}, floorArgs[2:]...)
		}})
	}
	for i, v := range h.Variants {
		v := v
		prof := i == 0
		tools = append(tools, &tool{name: v.String(), kind: "ours", inflater: v.Inflater, check: sc.check,
			argv: func(r *runCtx) []string {
				src, dst := sc.ours(r)
				bin := h.Bin
				if v.Bin != "" {
					bin = v.Bin
				}
				return []string{bin, "-j", strconv.Itoa(v.J), "-J", strconv.Itoa(v.BigJ), "--log-format", "json", "process", src, dst}
			},
			env: func(last bool) []string {
				var e []string
				if v.Inflate != "" {
					e = append(e, "OCCYSTRAP_INFLATE="+v.Inflate)
				}
				if !prof || !last {
					return e
				}
				if h.CPUProfile != "" {
					e = append(e, "OCCYSTRAP_CPUPROFILE="+h.CPUProfile+"."+sc.Name)
				}
				if h.MemProfile != "" {
					e = append(e, "OCCYSTRAP_MEMPROFILE="+h.MemProfile+"."+sc.Name)
				}
				return e
			}})
	}
	if sc.shards > 0 && len(h.Variants) > 0 {
		v := h.Variants[0]
		for _, mode := range []string{ShardAffinity, ShardRoundRobin} {
			tools = append(tools, &tool{name: fmt.Sprintf("%s %d shards %s", v, sc.shards, mode), kind: "shards", inflater: v.Inflater, check: sc.check,
				argv: func(r *runCtx) []string {
					src, dst := sc.ours(r)
					return []string{h.Self, "shards", "--n", strconv.Itoa(sc.shards), "--mode", mode, "--",
						h.Bin, "-j", strconv.Itoa(v.J), "-J", strconv.Itoa(v.BigJ), "--log-format", "json", "process", src, dst}
				}})
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
		tools = append(tools, &tool{name: p, kind: "peer", argv: func(r *runCtx) []string { return append([]string{path}, args(r)...) }})
	}
	// Repetitions are interleaved (every tool once, then again), so that a
	// shared machine's load drifts over all tools alike.
	for _, t := range tools {
		t.res = ToolResult{Tool: t.name, Kind: t.kind, Status: StatusOK, Inflater: t.inflater}
	}
	for rep := 0; rep < h.Reps; rep++ {
		for _, t := range tools {
			if t.res.Status == StatusOK {
				h.runOnce(ctx, sc, t, rep)
			}
		}
	}
	for _, t := range tools {
		if t.res.Status == StatusOK {
			t.res.Summary = summarise(t.res.Samples)
		}
		res.Tools = append(res.Tools, t.res)
	}
	// Ratios.
	var floor, gzFloor, ours float64
	for _, t := range res.Tools {
		if t.Status != StatusOK {
			continue
		}
		if t.Kind == "floor" {
			floor = t.Summary.WallSec.Median
		}
		if t.Kind == "floor-gunzip" {
			gzFloor = t.Summary.WallSec.Median
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
		if gzFloor > 0 && t.Kind != "floor" {
			t.VsGunzipFloor = t.Summary.WallSec.Median / gzFloor
		}
		if ours > 0 && t.Kind != "floor" {
			t.OursOver = ours / t.Summary.WallSec.Median
		}
	}
	return res, nil
}

// tool is one tool of a scenario and its result so far.
type tool struct {
	name, kind string
	inflater   string
	argv       func(*runCtx) []string
	check      func(*runCtx) error
	env        func(last bool) []string
	res        ToolResult
}

// runOnce runs repetition rep of t, adding its sample or setting its
// failure.
func (h *Harness) runOnce(ctx context.Context, sc Scenario, t *tool, rep int) {
	tr := &t.res
	if err := ctx.Err(); err != nil {
		tr.Status = "interrupted"
		return
	}
	out, err := os.MkdirTemp(h.Tmp, "run-")
	if err != nil {
		tr.Status = "failed: " + err.Error()
		return
	}
	r := &runCtx{h: h, out: out}
	servers := []*env.Server{h.Env.Source}
	if sc.dest {
		if r.dest, err = h.Env.NewDest(ctx); err != nil {
			tr.Status = "failed: " + err.Error()
			return
		}
		servers = append(servers, r.dest)
	}
	home := filepath.Join(out, "home")
	_ = os.MkdirAll(home, 0o755)
	environ := append(os.Environ(), "SSL_CERT_FILE="+h.Env.CAFile, "HOME="+home, "DOCKER_CONFIG="+home+"/.docker",
		"OCCYSTRAP_TEMP_DIR="+out, "TMPDIR="+out)
	if t.env != nil {
		environ = append(environ, t.env(rep == h.Reps-1)...)
	}
	s, output, err := execMeasured(ctx, t.argv(r), environ, out, servers)
	if err == nil && t.check != nil && h.Check && rep == 0 {
		err = t.check(r)
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
			fmt.Fprintf(h.Log, "  %-26s %s\n", t.name, firstLine(tr.Status))
		}
		return
	}
	tr.Samples = append(tr.Samples, s)
	if h.Log != nil {
		fmt.Fprintf(h.Log, "  %-26s rep %d: %.2fs wall, %.2fs cpu, %d MiB rss, %d requests, %d conns\n",
			t.name, rep+1, s.Wall.Seconds(), s.CPU.Seconds(), s.MaxRSS>>20, s.Net.Requests, s.Net.Conns)
	}
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
