package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestStallAndRetryAfterFlags: --stall-timeout (and its environment
// variable) makes a run whose blob body stops sending resume it and
// succeed, with --retries 0; --max-retry-after cuts a day-long Retry-After
// to its value and says so in the log.
func TestStallAndRetryAfterFlags(t *testing.T) {
	img, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 43, Layers: 2, LayerSize: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	layer := img.Layers[0].Digest.String()
	for _, viaEnv := range []bool{false, true} {
		t.Run(map[bool]string{false: "flags", true: "environment"}[viaEnv], func(t *testing.T) {
			in := testregistry.NewInjector(
				testregistry.Fault{Kind: testregistry.TooMany, Match: testregistry.IsManifestGet, RetryAfter: "86400"},
				testregistry.Fault{Kind: testregistry.Stall, Match: testregistry.IsBlobGetOf(layer), Limit: int64(20 * time.Second)},
			)
			reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: in.Wrap})
			if err := reg.Push(context.Background(), "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			args := []string{"--insecure", "--log-format", "json", "--retries", "1"}
			if viaEnv {
				t.Setenv("OCCYSTRAP_STALL_TIMEOUT", "1s")
				t.Setenv("OCCYSTRAP_MAX_RETRY_AFTER", "10ms")
			} else {
				args = append(args, "--stall-timeout", "1s", "--max-retry-after", "10ms")
			}
			args = append(args, "process", "registry://"+reg.Host+"/fixture/app:v1", "dir://"+t.TempDir())
			code, _, stderr := runCLI(args...)
			in.WaitStalls()
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if in.Fired(testregistry.TooMany) != 1 || in.Abandoned() != 1 {
				t.Errorf("429s %d, stalls given up %d; want 1 and 1", in.Fired(testregistry.TooMany), in.Abandoned())
			}
			if !strings.Contains(stderr, `"retry_after":"86400"`) || !strings.Contains(stderr, "Retry-After is longer than --max-retry-after") {
				t.Errorf("the capped Retry-After is not logged:\n%s", stderr)
			}
		})
	}
}
