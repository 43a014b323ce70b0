package transport

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/conc/pool"
	"golang.org/x/time/rate"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestAdaptiveSteps walks the policy on a fake clock: unlimited at first,
// halved from the observed rate on a rejection, one cut per quiet period,
// grown back by steps after quiet periods, and lifted past twice the rate
// it was cut from.
func TestAdaptiveSteps(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newAdaptive(time.Second, func() time.Time { return now })
	if r := a.rate(); r != 0 {
		t.Fatalf("initial rate %v, want 0 (unlimited)", r)
	}
	for range 100 { // 100 requests within the last second
		a.sent()
		now = now.Add(5 * time.Millisecond)
	}
	if r, cut := a.rejected(); !cut || r != 50 {
		t.Fatalf("first rejection: rate %v cut %v; want 50, true", r, cut)
	}
	if _, cut := a.rejected(); cut {
		t.Fatal("a second rejection within the quiet period cut again")
	}
	now = now.Add(1100 * time.Millisecond)
	a.sent()
	if r := a.rate(); r != 55 {
		t.Fatalf("after a quiet period rate %v, want 55", r)
	}
	a.sent() // no new quiet period yet
	if r := a.rate(); r != 55 {
		t.Fatalf("grew twice in one quiet period: %v", r)
	}
	for range 40 {
		now = now.Add(1100 * time.Millisecond)
		a.sent()
	}
	if r := a.rate(); r != 0 {
		t.Fatalf("after long quiet rate %v, want lifted (0)", r)
	}
	if a.lim.Limit() != rate.Inf {
		t.Fatalf("limiter %v, want Inf", a.lim.Limit())
	}
}

// TestAdaptiveRateAgainstLimitedRegistry: the reference registry behind a
// limiter that answers 429 above a fixed request rate. With --rate-limit auto, a burst of parallel
// requests completes without exhausting retries, and by its second half
// the client sends at about the server's limit with few rejections; the
// same run unlimited is rejected far more often.
func TestAdaptiveRateAgainstLimitedRegistry(t *testing.T) {
	const limit = 50 // requests per second the server allows
	run := func(t *testing.T, auto bool) (failed int, secondHalfRejected float64) {
		srvLim := rate.NewLimiter(limit, 5)
		var served, rejected, lateServed, lateRejected atomic.Int64
		var late atomic.Bool
		reg0 := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !srvLim.Allow() {
					rejected.Add(1)
					if late.Load() {
						lateRejected.Add(1)
					}
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				served.Add(1)
				if late.Load() {
					lateServed.Add(1)
				}
				next.ServeHTTP(w, r)
			})
		}})
		tr, err := New(Options{RateLimitAuto: auto, AdaptQuiet: 500 * time.Millisecond,
			Retries: 4, RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		reg := tr.Registry(reg0.Host, RegistryOptions{Insecure: true})
		const n = 200
		var done, fails atomic.Int64
		p := pool.New().WithMaxGoroutines(16)
		for range n {
			p.Go(func() {
				resp, err := reg.Do(context.Background(), Request{Method: http.MethodGet, URL: reg.URL("/v2/")})
				if err == nil {
					if resp.StatusCode != http.StatusOK {
						fails.Add(1)
					}
					resp.Body.Close()
				} else {
					fails.Add(1)
				}
				if done.Add(1) == n/2 {
					late.Store(true)
				}
			})
		}
		p.Wait()
		total := lateServed.Load() + lateRejected.Load()
		t.Logf("auto=%v: served %d, rejected %d; second half %d served, %d rejected; %d requests failed; rate now %.1f/s",
			auto, served.Load(), rejected.Load(), lateServed.Load(), lateRejected.Load(), fails.Load(), tr.Stats().RateLimit)
		return int(fails.Load()), float64(lateRejected.Load()) / float64(max(total, 1))
	}
	failed, autoRejected := run(t, true)
	if failed != 0 {
		t.Errorf("with --rate-limit auto %d requests exhausted their retries", failed)
	}
	if autoRejected > 0.25 {
		t.Errorf("with --rate-limit auto %.0f%% of the second half's requests were rejected; want the rate settled near the limit", autoRejected*100)
	}
	_, plainRejected := run(t, false)
	if plainRejected <= autoRejected {
		t.Errorf("unlimited run rejected %.0f%% in its second half, auto %.0f%%: the adaptation changed nothing", plainRejected*100, autoRejected*100)
	}
}
