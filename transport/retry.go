package transport

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
)

// retrying wraps hc in the retry policy.
func (t *Transport) retrying(hc *http.Client) *retryablehttp.Client {
	opts := t.opts
	return &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     opts.Retries,
		CheckRetry:   t.checkRetry,
		Backoff:      t.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, attempt int) {
			if attempt > 0 {
				t.c.retries.Add(1)
				zerolog.Ctx(req.Context()).Debug().Str("method", req.Method).
					Str("host", req.URL.Host).Str("path", req.URL.Path).
					Int("attempt", attempt).Msg("Retrying request")
			}
		},
	}
}

// do sends one request through the retrying client. body, when not nil, is
// re-opened for every attempt.
func (t *Transport) do(req *http.Request, body retryablehttp.ReaderFunc) (*http.Response, error) {
	return t.doWith(t.client, req, body)
}

// doWith is do through client c.
func (t *Transport) doWith(c *retryablehttp.Client, req *http.Request, body retryablehttp.ReaderFunc) (*http.Response, error) {
	var raw any
	var guards guardSet
	if body != nil {
		// Every attempt's body is guarded: once Do returns, the transport
		// can no longer read it. net/http may go on reading a request body
		// in its own goroutine after RoundTrip returned (a cancelled or
		// early-answered request), and callers reuse what backs the body (a
		// pooled buffer, the next chunk of a stream) as soon as Do returns.
		raw = retryablehttp.ReaderFunc(func() (io.Reader, error) {
			r, err := body()
			if err != nil {
				return nil, err
			}
			return guards.add(r), nil
		})
		defer guards.closeAll()
	}
	// rreq wraps req itself: SetBody overwrites req.ContentLength with
	// what it can see (0 for a stream), so the caller's is kept first.
	n := req.ContentLength
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		if err := rreq.SetBody(raw); err != nil {
			return nil, err
		}
		rreq.ContentLength = n
	}
	return c.Do(rreq)
}

// checkRedirect follows up to 10 redirects and drops credentials when a
// redirect leaves the original host (blob storage redirects are normal).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

func (t *Transport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		t.c.rateLimited.Add(1)
	}
	if t.adapt != nil && resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if r, cut := t.adapt.rejected(); cut {
			zerolog.Ctx(ctx).Info().Str("event", "rate_limit").Str("host", resp.Request.URL.Host).
				Int("status", resp.StatusCode).Float64("rate_limit_per_s", r).Msg("Rate limit lowered")
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff honours Retry-After on 429 and 503, and is otherwise exponential
// with jitter: a random wait in [d/2, d], d = min * 2^attempt, capped at max.
func (t *Transport) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if d > t.opts.MaxRetryAfter {
				if resp.Request != nil {
					zerolog.Ctx(resp.Request.Context()).Warn().Str("host", resp.Request.URL.Host).
						Str("retry_after", resp.Header.Get("Retry-After")).Dur("waiting", t.opts.MaxRetryAfter).
						Msg("Retry-After is longer than --max-retry-after: waiting that long instead")
				}
				return t.opts.MaxRetryAfter
			}
			return d
		}
	}
	d := minWait << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	half := d / 2
	return half + rand.N(half+1)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if when, err := http.ParseTime(v); err == nil {
		d := when.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
