package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// Shard modes of `bench shards`.
const (
	ShardAffinity   = "affinity"    // each process plans by layer affinity itself, as the pods of an Indexed Job do
	ShardRoundRobin = "round-robin" // the images dealt out in name order, given to every process as a plan file
)

// Shards runs n occystrap processes at once, as the pods of a Kubernetes
// Indexed Job do (JOB_COMPLETION_INDEX=0..n-1, OCCYSTRAP_SHARDS=n), each
// with argv (an occystrap command line ending in "process SOURCE
// DESTINATION"). In round-robin mode it first asks occystrap plan for the
// images and deals them out into a plan file. It is what `bench shards`
// runs, so that the harness measures the whole sharded run as one command.
func Shards(ctx context.Context, n int, mode string, argv []string) error {
	i := slices.Index(argv, "process")
	if i < 1 || i+2 >= len(argv) || n < 1 {
		return fmt.Errorf("shards: want OCCYSTRAP [GLOBALS] process SOURCE DESTINATION, and n >= 1")
	}
	args := slices.Clone(argv[1:])
	switch mode {
	case ShardAffinity:
	case ShardRoundRobin:
		plan, err := roundRobinPlan(ctx, argv[0], argv[1:i], argv[i+1], n)
		if err != nil {
			return err
		}
		args = append(args, "--plan", plan)
	default:
		return fmt.Errorf("shards: mode %q: want %s or %s", mode, ShardAffinity, ShardRoundRobin)
	}
	g, ctx := errgroup.WithContext(ctx)
	for k := range n {
		g.Go(func() error {
			cmd := exec.CommandContext(ctx, argv[0], args...)
			cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX="+strconv.Itoa(k), "OCCYSTRAP_SHARDS="+strconv.Itoa(n))
			cmd.Stdout = os.Stdout
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("shard %d/%d: %w\n%s", k, n, err, tail(stderr.String(), 2000))
			}
			return nil
		})
	}
	return g.Wait()
}

// roundRobinPlan writes a plan file that deals src's images out over n
// shards in name order, and returns its path.
func roundRobinPlan(ctx context.Context, bin string, globals []string, src string, n int) (string, error) {
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(globals), "-O", "json", "plan", src, "--shards", strconv.Itoa(n))...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("plan %s: %w\n%s", src, err, tail(stderr.String(), 2000))
	}
	var plan struct {
		Shards []struct {
			Images []string `json:"images"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		return "", fmt.Errorf("plan %s: %w", src, err)
	}
	var images []string
	for _, s := range plan.Shards {
		images = append(images, s.Images...)
	}
	slices.Sort(images)
	rr := struct {
		Shards []map[string]any `json:"shards"`
	}{}
	for k := range n {
		rr.Shards = append(rr.Shards, map[string]any{"images": []string{}})
		for j := k; j < len(images); j += n {
			rr.Shards[k]["images"] = append(rr.Shards[k]["images"].([]string), images[j])
		}
		slices.Sort(rr.Shards[k]["images"].([]string))
	}
	b, err := json.Marshal(rr)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "occystrap-bench-plan-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "round-robin.json")
	return p, os.WriteFile(p, b, 0o644)
}
