package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/sources/quay"
	"github.com/occystrap/occystrap/transport"
)

// benchQuay starts the emulator over TLS (HTTP/2) behind latency, trusted
// through SSL_CERT_FILE as a user would, with a corpus of n images in
// groups sharing base layers.
func benchQuay(b *testing.B, latency time.Duration, n int) (*testquay.Server, *testregistry.Registry) {
	b.Helper()
	q, reg := testquay.Start(b, testquay.Options{}, testregistry.Options{Wrap: testregistry.Latency(latency)})
	if n > 0 {
		if _, err := q.Seed(context.Background(), reg, testquay.Corpus{
			Namespace: "openstack.kolla", Images: n, Groups: 5, Common: 2, Group: 3, Own: 2, LayerSize: 64 << 10,
			Tag: "2025.1-debian-bookworm",
		}); err != nil {
			b.Fatal(err)
		}
	}
	ca := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SSL_CERT_FILE", ca)
	b.Setenv(quayHostEnv, reg.Host)
	return q, reg
}

// BenchmarkQuayMirror is the motivating command on 50 images (7 layers
// each, 117 distinct layers of 64 KiB) behind 20 ms per request, at
// several -J and -j settings. It reports the registry requests per run
// and the layer GETs per run.
func BenchmarkQuayMirror(b *testing.B) {
	q, _ := benchQuay(b, 20*time.Millisecond, 50)
	for _, s := range []struct{ J, j int }{{1, 4}, {3, 4}, {8, 4}, {16, 4}, {8, 8}, {16, 8}, {50, 8}} {
		b.Run(fmt.Sprintf("J%d-j%d", s.J, s.j), func(b *testing.B) {
			var reqs, blobs int64
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "out")
				r0, g0 := q.Requests(), sumGets(q)
				code, _, stderr := runCLI("--log-format", "console", "-J", fmt.Sprint(s.J), "-j", fmt.Sprint(s.j), "process",
					"quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01", "dir://"+out+"?unique_names=true")
				if code != 0 {
					b.Fatalf("exit %d\n%s", code, stderr)
				}
				reqs += q.Requests() - r0
				blobs += int64(sumGets(q) - g0)
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
			b.ReportMetric(float64(blobs)/float64(b.N), "blob-GETs/op")
		})
	}
}

func sumGets(q *testquay.Server) int {
	n := 0
	for _, c := range q.AllBlobGets() {
		n += c
	}
	return n
}

// BenchmarkQuayResolve resolves 120 repositories (two listing pages, 120
// tag checks) behind 20 ms per request, at several -j.
func BenchmarkQuayResolve(b *testing.B) {
	q, reg := benchQuay(b, 20*time.Millisecond, 0)
	at := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	for i := range 120 {
		q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: fmt.Sprintf("svc-%03d", i), LastModified: &at,
			Tags: []testquay.Tag{{Name: "2025.1-debian-bookworm", StartTS: at}}})
	}
	spec := quay.Spec{Host: reg.Host, Namespace: "openstack.kolla", Glob: "*", Tag: "2025.1-debian-bookworm",
		Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	for _, j := range []int{1, 4, 16, 32} {
		b.Run(fmt.Sprintf("j%d", j), func(b *testing.B) {
			tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs(), Parallel: j})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			for i := 0; i < b.N; i++ {
				refs, err := quay.Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{}), spec, j)
				if err != nil || len(refs) != 120 {
					b.Fatalf("%d refs, %v", len(refs), err)
				}
			}
		})
	}
}
