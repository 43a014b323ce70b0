package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/bench/internal/harness"
)

// TestMain lets the harness run this test binary as the floor (`floor ...`)
// and the shard launcher (`shards ...`), as it runs the bench binary in a
// real run.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "floor" || os.Args[1] == "shards") {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// toxiproxy's link goroutines end shortly after their connection
		// closes, asynchronously from Proxy.Stop.
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*LatencyToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanReader).Read"),
		// The registry app's notification and storage goroutines outlive
		// it (as in sources/registry's tests).
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// TestSmoke runs the small preset end to end, once, through the real CLI
// binary, and checks that every scenario ran (its output verified by the
// harness) and every figure is there. Times are not asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds occystrap and runs every scenario")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	r := &RunCmd{
		Common:   Common{Preset: "small", Latency: 5 * time.Millisecond, CorpusDir: t.TempDir()},
		Reps:     1,
		Variants: []string{"4x3", "1x1"},
		JSON:     jsonFile,
	}
	var out, log bytes.Buffer
	results, err := r.run(ctx, &out, &log)
	if err != nil {
		t.Fatalf("run: %v\nlog:\n%s\ntable:\n%s", err, log.String(), out.String())
	}
	if got, want := len(results), len(harness.Scenarios()); got != want {
		t.Fatalf("%d scenario results, want %d", got, want)
	}
	for _, res := range results {
		if !strings.Contains(out.String(), "== "+res.Scenario+":") {
			t.Errorf("table has no %s section:\n%s", res.Scenario, out.String())
		}
		if res.UniqueBlobs == 0 || res.BlobMB <= 0 {
			t.Errorf("%s: %d unique blobs, %.1f MiB", res.Scenario, res.UniqueBlobs, res.BlobMB)
		}
		kinds := map[string]int{}
		for _, tr := range res.Tools {
			if tr.Status != harness.StatusOK {
				t.Errorf("%s/%s: %s", res.Scenario, tr.Tool, tr.Status)
				continue
			}
			kinds[tr.Kind]++
			if len(tr.Samples) != 1 {
				t.Errorf("%s/%s: %d samples, want 1", res.Scenario, tr.Tool, len(tr.Samples))
				continue
			}
			s := tr.Samples[0]
			if s.Wall <= 0 || s.MaxRSS <= 0 {
				t.Errorf("%s/%s: wall %v, max RSS %d", res.Scenario, tr.Tool, s.Wall, s.MaxRSS)
			}
			if res.Scenario != "tar-dir" {
				// Everything moved crossed the counted wire once at least.
				if min := int64(res.BlobMB * (1 << 20)); s.Net.BytesOut < min || s.Net.Requests < int64(res.UniqueBlobs) || s.Net.Conns < 1 || s.Net.Handshakes < 1 {
					t.Errorf("%s/%s: %+v, want at least %d bytes out, %d requests, a connection and a handshake", res.Scenario, tr.Tool, s.Net, min, res.UniqueBlobs)
				}
			}
			if tr.Kind == "floor-upload" && s.Net.BytesIn < int64(res.BlobMB*(1<<20)) {
				t.Errorf("%s/%s: %d bytes into the servers, want every blob uploaded (%.1f MiB)", res.Scenario, tr.Tool, s.Net.BytesIn, res.BlobMB)
			}
			if tr.Kind == "ours" && tr.VsFloor <= 0 {
				t.Errorf("%s/%s: no ratio to the floor", res.Scenario, tr.Tool)
			}
			if tr.Kind == "ours" && tr.Inflater != "go" && tr.Inflater != "isal" && tr.Inflater != "isal-cgo" {
				t.Errorf("%s/%s: inflater %q not reported", res.Scenario, tr.Tool, tr.Inflater)
			}
		}
		if kinds["floor"] != 1 {
			t.Errorf("%s: %d floors ran, want 1", res.Scenario, kinds["floor"])
		}
		if inflates := res.Scenario == "quay-bulk-dir" || res.Scenario == "registry-dir" || res.Scenario == "registry-tar"; inflates != (kinds["floor-gunzip"] == 1) {
			t.Errorf("%s: %d gunzip floors ran", res.Scenario, kinds["floor-gunzip"])
		}
		if toRegistry := res.Scenario == "registry-registry" || res.Scenario == "quay-bulk-registry"; toRegistry != (kinds["floor-upload"] == 1) {
			t.Errorf("%s: %d upload floors ran", res.Scenario, kinds["floor-upload"])
		}
		if kinds["ours"] == 0 {
			t.Errorf("%s: occystrap did not run", res.Scenario)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []harness.Result `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JSON output: %v", err)
	}
	if len(doc.Results) != len(results) {
		t.Errorf("JSON has %d results, want %d", len(doc.Results), len(results))
	}
}
