package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/occystrap/occystrap/bench/internal/env"
)

// Sample is one measured run.
type Sample struct {
	Wall   time.Duration `json:"wall_ns"`
	CPU    time.Duration `json:"cpu_ns"`
	MaxRSS int64         `json:"max_rss_bytes"`
	Net    env.Counters  `json:"net"`
}

// execMeasured runs argv with extra environment, counting the servers'
// traffic during the run. The output (stderr and stdout) is returned for
// errors.
func execMeasured(ctx context.Context, argv, environ []string, dir string, servers []*env.Server) (Sample, string, error) {
	before := total(servers)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Start()
	var hwm int64
	if err == nil {
		// rusage's ru_maxrss of a child started with vfork counts the
		// parent's RSS (the kernel keeps the old mm's high-water mark
		// across exec), so it would report the harness's size. VmHWM is
		// per address space: poll it until the child exits (it only grows,
		// so the last reading misses at most one interval's growth).
		done := make(chan struct{})
		polled := make(chan int64, 1)
		var wg conc.WaitGroup
		wg.Go(func() {
			var last int64
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				if v := vmHWM(cmd.Process.Pid); v > last {
					last = v
				}
				select {
				case <-done:
					polled <- last
					return
				case <-t.C:
				}
			}
		})
		err = cmd.Wait()
		close(done)
		wg.Wait()
		hwm = <-polled
	}
	wall := time.Since(start)
	s := Sample{Wall: wall, Net: total(servers).Sub(before), MaxRSS: hwm}
	if cmd.ProcessState != nil {
		s.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return s, out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 2000))
	}
	return s, out.String(), nil
}

func total(servers []*env.Server) env.Counters {
	var c env.Counters
	for _, s := range servers {
		if s != nil {
			c = c.Add(s.Counters())
		}
	}
	return c
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Stat is a metric's median, min and max over the repetitions.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stat(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Summary is a tool's metrics over the repetitions of one scenario.
type Summary struct {
	WallSec    Stat `json:"wall_seconds"`
	CPUSec     Stat `json:"cpu_seconds"`
	MaxRSSMB   Stat `json:"max_rss_mib"`
	Requests   Stat `json:"requests"`
	Conns      Stat `json:"connections"`
	Handshakes Stat `json:"tls_handshakes"`
	WireMB     Stat `json:"wire_mib"`
}

func summarise(ss []Sample) Summary {
	f := func(g func(Sample) float64) Stat {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = g(s)
		}
		return stat(xs)
	}
	return Summary{
		WallSec:    f(func(s Sample) float64 { return s.Wall.Seconds() }),
		CPUSec:     f(func(s Sample) float64 { return s.CPU.Seconds() }),
		MaxRSSMB:   f(func(s Sample) float64 { return float64(s.MaxRSS) / (1 << 20) }),
		Requests:   f(func(s Sample) float64 { return float64(s.Net.Requests) }),
		Conns:      f(func(s Sample) float64 { return float64(s.Net.Conns) }),
		Handshakes: f(func(s Sample) float64 { return float64(s.Net.Handshakes) }),
		WireMB:     f(func(s Sample) float64 { return float64(s.Net.BytesIn+s.Net.BytesOut) / (1 << 20) }),
	}
}

// vmHWM is the process's peak RSS so far, in bytes (0 when it is gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
