package transport

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// adaptive is the --rate-limit auto policy: additive increase,
// multiplicative decrease (AIMD), shared by every request of the process.
//
// It starts unlimited. A 429 or 503 halves the rate: the limit becomes half
// of the rate requests were actually sent at over the last second (or half
// the current limit, if that is lower), at most once per backoff period so
// that a burst of rejections of requests sent before the first one was seen
// counts once. After a quiet period with no rejection the limit grows by a
// tenth of the rate it was cut to, again each quiet period, and is lifted
// when it has doubled past the rate of the last cut. Retry-After is honoured
// separately, by the retry backoff.
type adaptive struct {
	lim *rate.Limiter

	// quiet is how long without a rejection before the rate grows, and
	// the least time between two cuts.
	quiet time.Duration
	// floor is the lowest the rate is ever cut to, requests per second.
	floor float64
	now   func() time.Time

	mu       sync.Mutex
	limit    float64   // current requests per second; +Inf is unlimited
	cut      float64   // the rate after the last cut (the step is a tenth of it)
	ceiling  float64   // lifted above this: 2x the observed rate at the last cut
	lastCut  time.Time // when the rate was last cut
	lastGrow time.Time // when the rate last grew (or was cut)
	buckets  [10]int   // requests in each 100 ms of the last second
	bucketAt int64     // the 100 ms tick of buckets[(bucketAt)%10]
}

func newAdaptive(quiet time.Duration, now func() time.Time) *adaptive {
	if now == nil {
		now = time.Now
	}
	return &adaptive{
		lim:   rate.NewLimiter(rate.Inf, 1),
		quiet: quiet,
		floor: 1,
		now:   now,
		limit: math.Inf(1),
	}
}

// sent records that a request is about to be sent, and lets the rate grow
// when it has been quiet long enough.
func (a *adaptive) sent() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.advance(now)
	a.buckets[a.bucketAt%int64(len(a.buckets))]++
	if math.IsInf(a.limit, 1) || now.Sub(a.lastCut) < a.quiet || now.Sub(a.lastGrow) < a.quiet {
		return
	}
	a.lastGrow = now
	next := a.limit + max(a.cut/10, a.floor)
	if next > a.ceiling {
		next = math.Inf(1)
	}
	a.set(next)
}

// rejected records a 429 or 503 and cuts the rate, once per quiet period.
// It returns the new rate and whether it was cut.
func (a *adaptive) rejected() (float64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !a.lastCut.IsZero() && now.Sub(a.lastCut) < a.quiet {
		return a.limit, false
	}
	a.advance(now)
	observed := 0
	for _, n := range a.buckets {
		observed += n
	}
	next := math.Min(float64(observed), a.limit) / 2
	next = math.Max(next, a.floor)
	a.cut = next
	a.ceiling = 2 * math.Max(float64(observed), next)
	a.lastCut, a.lastGrow = now, now
	a.set(next)
	return next, true
}

// advance moves the one-second window of buckets to now.
func (a *adaptive) advance(now time.Time) {
	tick := now.UnixMilli() / 100
	if tick-a.bucketAt >= int64(len(a.buckets)) {
		a.buckets = [10]int{}
	} else {
		for t := a.bucketAt + 1; t <= tick; t++ {
			a.buckets[t%int64(len(a.buckets))] = 0
		}
	}
	if tick > a.bucketAt {
		a.bucketAt = tick
	}
}

func (a *adaptive) set(limit float64) {
	a.limit = limit
	if math.IsInf(limit, 1) {
		a.lim.SetLimitAt(a.now(), rate.Inf)
		return
	}
	a.lim.SetLimitAt(a.now(), rate.Limit(limit))
}

// rate is the current limit in requests per second, 0 when unlimited.
func (a *adaptive) rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if math.IsInf(a.limit, 1) {
		return 0
	}
	return a.limit
}
