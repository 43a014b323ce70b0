package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/occystrap/occystrap/bench/internal/corpus"
	"github.com/occystrap/occystrap/bench/internal/env"
	"github.com/occystrap/occystrap/bench/internal/harness"
)

// Common are the options of the corpus and the network.
type Common struct {
	Preset    string        `enum:"small,full" default:"full" help:"Corpus preset: small (6 images, quick) or full (50 images)."`
	Images    int           `help:"Number of images (overrides the preset's)."`
	Latency   time.Duration `default:"20ms" help:"Latency added each way by the proxy."`
	Bandwidth float64       `help:"Per-connection bandwidth limit each way, MB/s (0 = none)."`
	CorpusDir string        `name:"corpus-dir" help:"Where generated corpora are cached (default: the OS cache dir)."`
	Occystrap string        `help:"Use this occystrap binary instead of building ./cmd/occystrap."`
	Tags      string        `help:"Build tags for the occystrap it builds (isal: libisal in process, needs cgo and libisal-dev)."`
	Keep      bool          `help:"Keep the temporary directory."`
}

// RunCmd runs the scenarios.
type RunCmd struct {
	Common
	Reps       int      `default:"3" help:"Repetitions per tool and scenario (median, min and max reported)."`
	Scenarios  []string `help:"Scenarios to run (default: all). Known: ${scenarios}."`
	Variants   []string `name:"jJ" default:"4x3,1x1" help:"occystrap -j x -J settings to run, JxJJ; the first is 'ours' in the ratios (a sweep: 1x1,2x1,4x3,8x6)."`
	Inflate    []string `default:"auto" help:"OCCYSTRAP_INFLATE values to run each -j/-J setting with (a sweep: isal,go); the inflater that ran is probed and named."`
	Peers      []string `default:"crane,regctl,skopeo" help:"Peers to run when found on PATH (none: --peers='')."`
	Baseline   string   `help:"Also run this other occystrap binary with the first -j/-J setting, interleaved with ours (an A/B comparison)."`
	JSON       string   `name:"json" help:"Write the results as JSON to this file."`
	CPUProfile string   `name:"cpuprofile" help:"Write a CPU profile of ours per scenario to FILE.<scenario>."`
	MemProfile string   `name:"memprofile" help:"Write a heap profile of ours per scenario to FILE.<scenario>."`
	NoCheck    bool     `name:"no-check" help:"Do not verify outputs."`
}

// DemoCmd is the offline demo.
type DemoCmd struct {
	Common
	Out   string `default:"occystrap-demo" help:"Folder the demo leaves its result in; a previous demo's result there is replaced."`
	Force bool   `help:"Replace --out even when it is not a previous demo's result."`
}

// demoMarker marks a folder as a demo's result, which a rerun may replace.
const demoMarker = ".occystrap-demo"

// FloorCmd is the floor (run by the harness as a child process).
type FloorCmd struct {
	CA       string   `help:"CA PEM file."`
	Host     string   `help:"Registry host."`
	File     string   `help:"Read this file instead."`
	Gunzip   bool     `help:"Also gunzip each gzip blob with Go (klauspost/compress)."`
	UploadTo string   `name:"upload-to" help:"Stream each blob into one upload to this registry host instead (repository floor/REPO)."`
	Blobs    []string `arg:"" optional:"" help:"REPO@DIGEST blobs."`
}

// ShardsCmd runs a sharded bulk run (run by the harness as a child
// process, so that it is measured as one command).
type ShardsCmd struct {
	N    int      `default:"4" help:"Shard processes."`
	Mode string   `enum:"affinity,round-robin" default:"affinity" help:"How images are split."`
	Argv []string `arg:"" passthrough:"" help:"OCCYSTRAP [GLOBALS] process SOURCE DESTINATION"`
}

// CLI is the command line.
type CLI struct {
	Run    RunCmd    `cmd:"" default:"withargs" help:"Run the scenarios and print the table."`
	Demo   DemoCmd   `cmd:"" help:"The offline demo: quay:// → dir:// against the embedded registry and Quay emulator."`
	Floor  FloorCmd  `cmd:"" hidden:""`
	Shards ShardsCmd `cmd:"" hidden:""`
}

func main() {
	var cli CLI
	var names []string
	for _, s := range harness.Scenarios() {
		names = append(names, s.Name)
	}
	kctx := kong.Parse(&cli, kong.Name("bench"), kong.Description("occystrap's benchmark harness and offline demo."),
		kong.Vars{"scenarios": strings.Join(names, ", ")})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// Run is the sharded run.
func (s *ShardsCmd) Run(ctx context.Context) error {
	argv := s.Argv
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	return harness.Shards(ctx, s.N, s.Mode, argv)
}

// Run is the floor.
func (f *FloorCmd) Run(ctx context.Context) error {
	return harness.Floor(ctx, f.CA, f.Host, f.File, f.Gunzip, f.UploadTo, f.Blobs)
}

// setup builds occystrap, loads the corpus and starts the servers.
type setup struct {
	tmp string
	bin string
	c   *corpus.Corpus
	e   *env.Env
}

func (s *setup) close(keep bool) {
	if s.e != nil {
		s.e.Close()
	}
	if !keep {
		_ = os.RemoveAll(s.tmp)
	}
}

func (c *Common) setup(ctx context.Context, log io.Writer) (*setup, error) {
	p := corpus.Full()
	if c.Preset == "small" {
		p = corpus.Small()
	}
	if c.Images > 0 {
		p.Images = c.Images
	}
	root := c.CorpusDir
	if root == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		root = filepath.Join(d, "occystrap-bench")
	}
	tmp, err := os.MkdirTemp("", "occystrap-bench-")
	if err != nil {
		return nil, err
	}
	s := &setup{tmp: tmp}
	s.bin = c.Occystrap
	if s.bin == "" {
		s.bin = filepath.Join(tmp, "occystrap")
		args := []string{"build", "-o", s.bin}
		if c.Tags != "" {
			args = append(args, "-tags", c.Tags)
		}
		args = append(args, "./cmd/occystrap")
		fmt.Fprintf(log, "building occystrap (go %s)...\n", strings.Join(args, " "))
		gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			return s, fmt.Errorf("find the module: %w", err)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return s, fmt.Errorf("build occystrap: %w", err)
		}
	}
	fmt.Fprintf(log, "corpus: %d images (cache %s)...\n", p.Images, root)
	if s.c, err = corpus.Load(ctx, root, p, log); err != nil {
		return s, err
	}
	start := time.Now()
	n := env.Net{Latency: c.Latency, BandwidthKBps: int64(c.Bandwidth * 1000)}
	if s.e, err = env.Start(ctx, tmp, s.c, n); err != nil {
		return s, err
	}
	fmt.Fprintf(log, "registry and Quay emulator at %s (behind toxiproxy: %v each way", s.e.Source.Host, c.Latency)
	if n.BandwidthKBps > 0 {
		fmt.Fprintf(log, ", %.1f MB/s per connection", c.Bandwidth)
	}
	fmt.Fprintf(log, "), loaded in %.1fs\n", time.Since(start).Seconds())
	return s, nil
}

// Run runs the scenarios.
func (r *RunCmd) Run(ctx context.Context) error {
	_, err := r.run(ctx, os.Stdout, os.Stderr)
	return err
}

// run runs the scenarios, prints the table on stdout and progress on log.
func (r *RunCmd) run(ctx context.Context, stdout, log io.Writer) ([]harness.Result, error) {
	s, err := r.setup(ctx, log)
	if s != nil {
		defer s.close(r.Keep)
	}
	if err != nil {
		return nil, err
	}
	results, err := r.runScenarios(ctx, s, stdout, log)
	return results, err
}

func (r *RunCmd) runScenarios(ctx context.Context, s *setup, stdout, log io.Writer) ([]harness.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h := &harness.Harness{Bin: s.bin, Self: self, Corpus: s.c, Env: s.e, Tmp: s.tmp, Reps: max(r.Reps, 1),
		Peers: r.Peers, CPUProfile: abs(r.CPUProfile), MemProfile: abs(r.MemProfile), Check: !r.NoCheck, Log: log}
	for _, v := range r.Variants {
		a, b, ok := strings.Cut(v, "x")
		j, err1 := strconv.Atoi(a)
		jj, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || j < 1 || jj < 1 {
			return nil, fmt.Errorf("--jJ %q: want JxJJ, e.g. 4x3", v)
		}
		inflates := r.Inflate
		if len(inflates) == 0 {
			inflates = []string{"auto"}
		}
		for _, inf := range inflates {
			if inf != "auto" && inf != "go" && inf != "isal" {
				return nil, fmt.Errorf("--inflate %q: want auto, go or isal", inf)
			}
			h.Variants = append(h.Variants, harness.Variant{J: j, BigJ: jj, Inflate: inf})
		}
	}
	if r.Baseline != "" && len(h.Variants) > 0 {
		b := h.Variants[0]
		b.Inflate, b.Bin = "", abs(r.Baseline)
		h.Variants = append(h.Variants, b)
	}
	if err := h.Prepare(ctx); err != nil {
		return nil, err
	}
	var results []harness.Result
	failed := false
	for _, sc := range harness.Scenarios() {
		if len(r.Scenarios) > 0 && !slices.Contains(r.Scenarios, sc.Name) {
			continue
		}
		fmt.Fprintf(log, "%s: %s\n", sc.Name, sc.Desc)
		res, err := h.Run(ctx, sc)
		if err != nil {
			return nil, err
		}
		for _, t := range res.Tools {
			if t.Status != harness.StatusOK && t.Status != harness.StatusUnsupported {
				failed = true
			}
		}
		results = append(results, res)
	}
	fmt.Fprintf(stdout, "occystrap bench: %d images (%s preset), latency %v each way, bandwidth %s, %d rep(s), %d CPUs (%s)\n",
		len(s.c.Images), r.Preset, r.Latency, bw(r.Bandwidth), h.Reps, runtime.NumCPU(), cpuModel())
	fmt.Fprintln(stdout, "×floor: median wall time over the floor's; ours/tool: ours' median wall over the tool's (below 1: ours is faster). Medians; wall also (min-max).")
	harness.Table(stdout, results)
	if r.JSON != "" {
		b, err := json.MarshalIndent(map[string]any{
			"images": len(s.c.Images), "preset": r.Preset, "latency": r.Latency.String(), "bandwidth_mbps": r.Bandwidth,
			"reps": h.Reps, "cpus": runtime.NumCPU(), "cpu_model": cpuModel(), "results": results,
		}, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(r.JSON, b, 0o644); err != nil {
			return nil, err
		}
	}
	if failed {
		return results, harness.ErrFailed
	}
	return results, nil
}

func bw(x float64) string {
	if x <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.1f MB/s per connection", x)
}

func abs(p string) string {
	if p == "" {
		return ""
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Run is the demo.
func (d *DemoCmd) Run(ctx context.Context) error { return d.run(ctx, os.Stdout, os.Stderr) }

// run is the demo, with its outputs given (the child occystrap writes to
// them directly).
func (d *DemoCmd) run(ctx context.Context, stdout, log io.Writer) error {
	if d.Preset == "full" && d.Images == 0 {
		d.Preset = "small"
	}
	s, err := d.setup(ctx, log)
	if s != nil {
		defer s.close(d.Keep)
	}
	if err != nil {
		return err
	}
	out, err := filepath.Abs(d.Out)
	if err != nil {
		return err
	}
	if err := clearDemoOut(out, d.Force); err != nil {
		return err
	}
	src := "quay://" + corpus.Namespace + "?host=" + s.e.Source.Host
	dst := "dir://" + out + "?unique_names=true"
	fmt.Fprintf(log, "\n$ occystrap process '%s' '%s'\n\n", src, dst)
	// The child writes to this process's stderr itself, so it sees the
	// terminal (or not) and NO_COLOR as it would run by hand: colours on
	// a terminal, none when redirected.
	cmd := exec.CommandContext(ctx, s.bin, "--log-format", "console", "process", src, dst)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+s.e.CAFile)
	cmd.Stdout = stdout
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, demoMarker), nil, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "\nDone: the images are in %s (catalog.json lists them). Run it again at will: it replaces them.\n", out)
	return nil
}

// clearDemoOut makes room for the demo's result: nothing there, a previous
// demo's result (removed), or anything with force (removed).
func clearDemoOut(out string, force bool) error {
	if _, err := os.Lstat(out); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(out, demoMarker))
	if err != nil && !force {
		return fmt.Errorf("%s exists and is not a previous demo's result; remove it, pass --force or choose another --out", out)
	}
	return os.RemoveAll(out)
}
