package inflate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
)

// BenchmarkGunzip inflates the same layer-like stream with each inflater
// this build has, at the bench corpus's layer sizes (about 0.8 MB and
// 6 MB of gzip) and a large one. Besides wall time (ns/op, MB/s of
// output) it reports cpu-ms/op: user+system CPU of this process and of
// its reaped children (igzip), per blob.
func BenchmarkGunzip(b *testing.B) {
	for _, size := range []int{2 << 20, 17 << 20, 64 << 20} {
		raw := layerLike(b, size)
		gz := gzipOf(b, raw)
		for _, kind := range kinds() {
			b.Run(fmt.Sprintf("%s/%.1fMBgz", kind, float64(len(gz))/1e6), func(b *testing.B) {
				z := force(b, kind)
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				before := cpuTime()
				for b.Loop() {
					rc, err := z.Gunzip(context.Background(), bytes.NewReader(gz), int64(len(gz)))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, rc); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
				b.ReportMetric(float64(cpuTime()-before)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the user+system CPU of this process and its reaped children.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}
