package testregistry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind is what an Injector does to a request.
type FaultKind int

const (
	// TooMany answers 429 with the fault's RetryAfter.
	TooMany FaultKind = iota
	// Unavailable answers 503.
	Unavailable
	// Cut sends the headers (with the full Content-Length) and half the
	// body, then breaks the connection (HTTP/1.1) or resets the stream
	// (HTTP/2).
	Cut
	// Short sends half the body without a Content-Length and ends the
	// response cleanly.
	Short
	// Corrupt sends the whole body with one byte flipped in the middle.
	Corrupt
	// Redirect answers 307 to the same path on the Injector's
	// RedirectTarget (another host, like blob storage).
	Redirect
	// CutUpload reads half of the request body (16 KiB of a streamed one),
	// then breaks the connection before the registry sees the request (an
	// upload cut mid-body).
	CutUpload
	// Stall sends the headers (with the full Content-Length) and half the
	// body, then nothing more until the client gives up (counted by
	// Abandoned), or until the fault's Limit as a duration (default 30 s)
	// has passed, when it breaks the connection (a client that never
	// notices fails its test rather than hanging it).
	Stall
	// Endless answers 200 without a Content-Length and a body that never
	// ends: the fault's Body repeated (default "{"), until the client stops
	// reading or Limit bytes (default 256 MiB) are sent. Sent counts the
	// bytes.
	Endless
	// Serve hands the request to the fault's Handler: a scripted response
	// (a manifest that lies about sizes, a host with its own challenge).
	Serve
)

func (k FaultKind) String() string {
	return [...]string{"TooMany", "Unavailable", "Cut", "Short", "Corrupt", "Redirect", "CutUpload", "Stall", "Endless", "Serve"}[k]
}

// Fault is one scripted fault.
type Fault struct {
	Kind FaultKind
	// Match picks the requests the fault applies to; nil matches all.
	Match func(*http.Request) bool
	// Times is how many matching requests get the fault (0 = 1; negative =
	// every one).
	Times int
	// RetryAfter is the Retry-After value for TooMany and Unavailable.
	RetryAfter string
	// Limit caps Endless (bytes) and Stall (nanoseconds).
	Limit int64
	// Body is what Endless repeats.
	Body []byte
	// Handler answers Serve.
	Handler http.Handler
}

// Injector is an http.Handler wrapper that applies scripted faults, each to
// its next Times matching requests, in the order given. It is safe for
// concurrent use.
type Injector struct {
	mu     sync.Mutex
	faults []*Fault
	left   []int
	fired  map[FaultKind]int
	target string

	sent      atomic.Int64
	abandoned atomic.Int64
	stalls    sync.WaitGroup
}

// WaitStalls waits until every Stall fault applied so far has ended: its
// client gave up, or its limit passed.
func (in *Injector) WaitStalls() { in.stalls.Wait() }

// Sent counts the bytes Endless faults sent.
func (in *Injector) Sent() int64 { return in.sent.Load() }

// Abandoned counts the Stall faults whose client gave up waiting (closed
// the stream or the connection) before the stall's limit; WaitStalls first.
func (in *Injector) Abandoned() int64 { return in.abandoned.Load() }

// NewInjector scripts faults.
func NewInjector(faults ...Fault) *Injector {
	in := &Injector{fired: map[FaultKind]int{}}
	for _, f := range faults {
		f := f
		n := f.Times
		if n == 0 {
			n = 1
		}
		in.faults = append(in.faults, &f)
		in.left = append(in.left, n)
	}
	return in
}

// SetRedirectTarget sets the base URL Redirect faults send clients to.
func (in *Injector) SetRedirectTarget(base string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.target = base
}

// Fired returns how many times faults of kind k were applied.
func (in *Injector) Fired(k FaultKind) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired[k]
}

// IsBlobGet matches GETs of blobs.
func IsBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

// IsBlobGetOf matches GETs of the blob with this digest.
func IsBlobGetOf(dgst string) func(*http.Request) bool {
	return func(r *http.Request) bool { return IsBlobGet(r) && strings.HasSuffix(r.URL.Path, "/blobs/"+dgst) }
}

// WithAuth narrows match to requests carrying an Authorization header (for
// example to redirect only at the registry, not at the blob store).
func WithAuth(match func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Header.Get("Authorization") != "" && match(r) }
}

// IsBlobPatch matches PATCHes of blob upload chunks.
func IsBlobPatch(r *http.Request) bool {
	return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

// IsManifestGet matches GETs of manifests.
func IsManifestGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
}

func (in *Injector) next(r *http.Request) (*Fault, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, f := range in.faults {
		if in.left[i] == 0 || (f.Match != nil && !f.Match(r)) {
			continue
		}
		if in.left[i] > 0 {
			in.left[i]--
		}
		in.fired[f.Kind]++
		if f.Kind == Stall {
			in.stalls.Add(1)
		}
		return f, in.target
	}
	return nil, ""
}

// Wrap puts the injector in front of next.
func (in *Injector) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, target := in.next(r)
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		if f.Kind == Stall {
			defer in.stalls.Done()
		}
		switch f.Kind {
		case TooMany, Unavailable:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			code := http.StatusServiceUnavailable
			if f.Kind == TooMany {
				code = http.StatusTooManyRequests
			}
			http.Error(w, http.StatusText(code), code)
			return
		case Redirect:
			http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		case Serve:
			f.Handler.ServeHTTP(w, r)
			return
		case Endless:
			in.endless(w, r, f)
			return
		case CutUpload:
			n := r.ContentLength / 2
			if n <= 0 {
				n = 16 << 10 // a streamed body: cut after 16 KiB
			}
			_, _ = io.CopyN(io.Discard, r.Body, n)
			panic(http.ErrAbortHandler)
		}
		// Body faults: record the real response, then send it damaged.
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if rec.Code != http.StatusOK && rec.Code != http.StatusPartialContent || len(body) < 2 {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		half := len(body) / 2
		switch f.Kind {
		case Cut:
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:half])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			// Give the client time to read the half before the reset
			// (an HTTP/2 RST_STREAM may otherwise overtake the data).
			time.Sleep(20 * time.Millisecond)
			panic(http.ErrAbortHandler)
		case Short:
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:half])
		case Corrupt:
			bad := append([]byte(nil), body...)
			bad[half] ^= 0xff
			w.WriteHeader(rec.Code)
			_, _ = w.Write(bad)
		case Stall:
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:half])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			limit := time.Duration(f.Limit)
			if limit <= 0 {
				limit = 30 * time.Second
			}
			t := time.NewTimer(limit)
			defer t.Stop()
			select {
			case <-r.Context().Done():
				in.abandoned.Add(1)
			case <-t.C:
			}
			panic(http.ErrAbortHandler)
		}
	})
}

// endless writes f.Body over and over until the client goes or f.Limit
// bytes are sent.
func (in *Injector) endless(w http.ResponseWriter, r *http.Request, f *Fault) {
	chunk := f.Body
	if len(chunk) == 0 {
		chunk = []byte("{")
	}
	for len(chunk) < 32<<10 {
		chunk = append(chunk, chunk...)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 256 << 20
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	for sent := int64(0); sent < limit; {
		n, err := w.Write(chunk[:min(int64(len(chunk)), limit-sent)])
		sent += int64(n)
		in.sent.Add(int64(n))
		if err != nil || r.Context().Err() != nil {
			return
		}
	}
}

// Latency delays every request by d before next handles it.
func Latency(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
