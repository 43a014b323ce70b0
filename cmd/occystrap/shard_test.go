package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// runMainEnv makes the test binary run the occystrap command line instead
// of the tests, so that a test can start several real processes of it.
const runMainEnv = "OCCYSTRAP_TEST_RUN_MAIN"

// TestMain (main_test.go) runs the CLI with os.Args[1:] when runMainEnv
// is set.

// runProcesses runs occystrap once per environment in envs, all at once, as
// separate processes (as the pods of an Indexed Job are).
func runProcesses(t *testing.T, envs [][]string, args ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New().WithErrors()
	for _, env := range envs {
		p.Go(func() error {
			cmd := exec.Command(exe, args...)
			cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%v %v: %v\n%s", env, args, err, out)
			}
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestShardedRun: plan is deterministic and puts every image in exactly one
// shard; N processes run as an Indexed Job runs them (JOB_COMPLETION_INDEX
// and OCCYSTRAP_SHARDS) into one dir:// output leave the same layers,
// manifests and catalog as a single run; with --plan FILE too; into
// registry:// every image lands with its digest.
func TestShardedRun(t *testing.T) {
	q, reg := testquay.Start(t, testquay.Options{PageSize: 7}, testregistry.Options{Plain: true})
	want := kollaCorpus(t, q, reg, 20)
	t.Setenv(quayHostEnv, reg.Host)
	src := "quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01"
	const n = 3

	planPath := filepath.Join(t.TempDir(), "plan.json")
	code, stdout, stderr := runCLI("--insecure", "-O", "json", "plan", src, "--shards", fmt.Sprint(n), "--out", planPath)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	var pf planFile
	if err := json.Unmarshal([]byte(stdout), &pf); err != nil {
		t.Fatalf("plan -O json: %v\n%s", err, stdout)
	}
	if fromFile, err := readPlan(planPath); err != nil || !cmp.Equal(fromFile, pf) {
		t.Errorf("plan --out differs from the printed plan (%v)", err)
	}
	count := map[string]int{}
	for _, s := range pf.Shards {
		for _, im := range s.Images {
			count[im]++
		}
	}
	for _, im := range want {
		if name := reg.Host + "/" + im.Repo + ":" + im.Tag; count[name] != 1 {
			t.Errorf("%s is in %d shards, want 1", name, count[name])
		}
	}
	if len(count) != len(want) || len(pf.Shards) != n {
		t.Errorf("%d images in %d shards, want %d in %d", len(count), len(pf.Shards), len(want), n)
	}
	if pf.Bytes > pf.RoundRobinBytes || pf.Bytes < pf.SingleBytes {
		t.Errorf("plan fetches %d bytes; single %d, round-robin %d", pf.Bytes, pf.SingleBytes, pf.RoundRobinBytes)
	}
	if _, again, _ := runCLI("--insecure", "-O", "json", "plan", src, "--shards", fmt.Sprint(n)); again != stdout {
		t.Errorf("a second plan of the same source differs:\n%s\n%s", stdout, again)
	}

	single := t.TempDir()
	if code, _, stderr := runCLI("--insecure", "process", src, "dir://"+single+"?unique_names=true"); code != 0 {
		t.Fatalf("single run: exit %d\n%s", code, stderr)
	}
	wantTree := tree(t, single)

	shared := t.TempDir()
	var envs [][]string
	for k := range n {
		envs = append(envs, []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", k), fmt.Sprintf("OCCYSTRAP_SHARDS=%d", n)})
	}
	runProcesses(t, envs, "--insecure", "--log-format", "console", "process", src, "dir://"+shared+"?unique_names=true")
	if diff := cmp.Diff(wantTree, tree(t, shared)); diff != "" {
		t.Errorf("%d shard processes into one dir:// differ from a single run (-single +shards):\n%s", n, diff)
	}

	fromPlan := t.TempDir()
	for k := range n {
		if code, _, stderr := runCLI("--insecure", "process", src, "dir://"+fromPlan+"?unique_names=true", "--shard", fmt.Sprintf("%d/%d", k, n), "--plan", planPath); code != 0 {
			t.Fatalf("shard %d/%d with --plan: exit %d\n%s", k, n, code, stderr)
		}
	}
	if diff := cmp.Diff(wantTree, tree(t, fromPlan)); diff != "" {
		t.Errorf("shards run with --plan differ from a single run (-single +shards):\n%s", diff)
	}

	dst := testregistry.Start(t, testregistry.Options{Plain: true})
	runProcesses(t, envs, "--insecure", "--log-format", "console", "process", src, "registry://"+dst.Host+"/mirror")
	assertMirrored(t, dst.Host, "mirror/", want)
}

// A single-image source run inside a sharded Job (the environment set, no
// --shard given) runs whole rather than refusing.
func TestShardEnvIgnoredForSingleImage(t *testing.T) {
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	t.Setenv("OCCYSTRAP_SHARDS", "4")
	code, _, stderr := runCLI("process", "tar://does-not-exist.tar", "dir://"+t.TempDir())
	if strings.Contains(stderr, "shard") {
		t.Errorf("exit %d, a single-image run refused for the Job environment:\n%s", code, stderr)
	}
}

func TestShardUsageErrors(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"source":"quay://ns/*:t","shards":[{"images":[]},{"images":[]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"process", "tar://x.tar", "dir://out", "--shard", "0/2"}, "need a multi-image source"},
		{[]string{"process", "quay://ns/*:t", "dir://out", "--shard", "2/2"}, "want K/N with 0 <= K < N"},
		{[]string{"process", "quay://ns/*:t", "dir://out", "--shard", "x"}, "want K/N with 0 <= K < N"},
		{[]string{"process", "quay://ns/*:t", "dir://out", "--plan", plan}, "give --shard K/N too"},
		{[]string{"process", "quay://ns/*:t", "dir://out", "--shard", "0/3", "--plan", plan}, "has 2 shards"},
		{[]string{"plan", "tar://x.tar", "--shards", "2"}, "sharding needs a multi-image source"},
		{[]string{"plan", "quay://ns/*:t", "--shards", "0"}, "want at least 1"},
	} {
		code, _, stderr := runCLI(append([]string{"--log-format", "console"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", tc.args, code, tc.want, stderr)
		}
	}
}
