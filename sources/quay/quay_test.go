package quay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/testquay"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The registry app's background workers and the HTTP servers'
		// idle connections outlive a test by design of those libraries.
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

func TestParseURI(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "quay://openstack.kolla", want: Spec{Host: "quay.io", Namespace: "openstack.kolla", Glob: "*", Tag: "latest", Token: "pw"}},
		{in: "quay://openstack.kolla/nova-*", want: Spec{Host: "quay.io", Namespace: "openstack.kolla", Glob: "nova-*", Tag: "latest", Token: "pw"}},
		{in: "quay://openstack.kolla/*:2025.1-debian-bookworm?since=2026-03-01", want: Spec{Host: "quay.io", Namespace: "openstack.kolla", Glob: "*", Tag: "2025.1-debian-bookworm", Since: day, Token: "pw"}},
		{in: "quay://ns/a:b:c?token=tok&host=quay.example.com:8443&insecure=true", want: Spec{Host: "quay.example.com:8443", Namespace: "ns", Glob: "a:b", Tag: "c", Token: "tok", Insecure: true}},
		{in: "quay:///x", wantErr: "quay:// URI requires a namespace/organization"},
		{in: "quay://ns/*?since=2026-3-1", wantErr: "Invalid since date '2026-3-1', expected YYYY-MM-DD format"},
		{in: "quay://ns/*?since=20260301", wantErr: "Invalid since date '20260301', expected YYYY-MM-DD format"},
		{in: "quay://ns/*?bogus=1", wantErr: `unknown option "bogus" for quay:// (known: token, since, host, insecure)`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			u, err := uri.ParseInput(c.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseURI(u, "", "pw", false)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// kolla seeds a namespace like openstack.kolla: services with the wanted
// tag pushed on different days, repositories without it, one never pushed,
// one deleted after listing, and 120 repositories in all.
func kolla(t *testing.T, opts testquay.Options) (*testquay.Server, *testregistry.Registry, *transport.Transport) {
	t.Helper()
	q, reg := testquay.Start(t, opts, testregistry.Options{})
	names := []string{"nova-api", "nova-compute", "glance-api", "keystone", "horizon", "neutron-server"}
	_, err := q.Seed(context.Background(), reg, testquay.Corpus{
		Namespace: "openstack.kolla", Images: len(names), Groups: 2, Common: 1, Group: 1, Own: 1,
		Tag: "2025.1", Name: func(i int) string { return names[i] },
		// nova-api and glance-api were pushed in February, the rest in March.
		Pushed: func(i int) time.Time {
			if i == 0 || i == 2 {
				return time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
			}
			return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	march := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	// Recently modified, but the 2025.1 tag is old (another tag is new).
	feb := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: "nova-conductor", LastModified: &march,
		Tags: []testquay.Tag{{Name: "2025.1", StartTS: feb, ManifestDigest: "sha256:00"}, {Name: "master", StartTS: march}}})
	q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: "nova-deleted", LastModified: &march, Deleted: true,
		Tags: []testquay.Tag{{Name: "2025.1", StartTS: march}}})
	q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: "nova-never"})
	for i := 0; i < 111; i++ {
		q.AddRepo(testquay.Repo{Namespace: "openstack.kolla", Name: fmt.Sprintf("zz-other-%03d", i), LastModified: &march,
			Tags: []testquay.Tag{{Name: "master", StartTS: march}}})
	}
	q.AddRepo(testquay.Repo{Namespace: "other", Name: "nova-api", LastModified: &march, Tags: []testquay.Tag{{Name: "2025.1", StartTS: march}}})
	tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs(), RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return q, reg, tr
}

func TestResolve(t *testing.T) {
	t.Parallel()
	q, reg, tr := kolla(t, testquay.Options{})
	cases := []struct {
		src  string
		want []string
	}{
		{"quay://openstack.kolla/*:2025.1", []string{"glance-api", "horizon", "keystone", "neutron-server", "nova-api", "nova-compute", "nova-conductor"}},
		{"quay://openstack.kolla/nova-*:2025.1", []string{"nova-api", "nova-compute", "nova-conductor"}},
		{"quay://openstack.kolla/nova-*:2025.1?since=2026-03-01", []string{"nova-compute"}},
		{"quay://openstack.kolla/*:2025.1?since=2026-03-01", []string{"horizon", "keystone", "neutron-server", "nova-compute"}},
		{"quay://openstack.kolla/*:2025.1?since=2026-02-10", []string{"glance-api", "horizon", "keystone", "neutron-server", "nova-api", "nova-compute"}},
		{"quay://openstack.kolla/*:2025.1?since=2099-01-01", nil},
		{"quay://openstack.kolla/[gk]*:2025.1", []string{"glance-api", "keystone"}},
		{"quay://openstack.kolla/*:nope", nil},
		{"quay://openstack.kolla/zz-other-1[01]0:master", []string{"zz-other-100", "zz-other-110"}},
		{"quay://openstack.kolla/nova-api", nil}, // tag latest
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			u, err := uri.ParseInput(c.src)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := ParseURI(u, reg.Host, "", false)
			if err != nil {
				t.Fatal(err)
			}
			var handed []Ref
			refs, err := ResolveFunc(context.Background(), tr.Quay(spec.Host, transport.QuayOptions{}), spec, 4, func(r Ref) { handed = append(handed, r) })
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(refs, handed); d != "" {
				t.Errorf("handed over as found (-result +handed):\n%s", d)
			}
			var got []string
			for _, r := range refs {
				if r.Host != reg.Host || r.Tag != spec.Tag || r.Repo != "openstack.kolla/"+r.Name() {
					t.Errorf("ref %+v", r)
				}
				got = append(got, r.Name())
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if q.APIRequests() == 0 {
		t.Error("no API requests counted")
	}
}

// TestResolveChecksWhileListing: the tags of a page's repositories are
// checked while the next page is fetched, not after the last one.
func TestResolveChecksWhileListing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string // "page" or "tag", as the API saw them
	rec := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/v1/repository") {
				kind := "page"
				if strings.Contains(r.URL.Path, "/tag/") {
					kind = "tag"
				}
				mu.Lock()
				order = append(order, kind)
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
	q, reg := testquay.Start(t, testquay.Options{PageSize: 4}, testregistry.Options{Wrap: rec})
	march := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 16; i++ {
		q.AddRepo(testquay.Repo{Namespace: "ns", Name: fmt.Sprintf("r%02d", i), LastModified: &march,
			Tags: []testquay.Tag{{Name: "latest", StartTS: march}}})
	}
	tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	refs, err := Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{}), Spec{Host: reg.Host, Namespace: "ns", Glob: "*", Tag: "latest"}, 4)
	if err != nil || len(refs) != 16 {
		t.Fatalf("Resolve = %d images, %v; want 16", len(refs), err)
	}
	mu.Lock()
	defer mu.Unlock()
	lastPage := slices.Index(order, "page")
	for i, k := range order {
		if k == "page" {
			lastPage = i
		}
	}
	if first := slices.Index(order, "tag"); first < 0 || first > lastPage {
		t.Errorf("API requests in order %v: no tag checked before the last page was asked for", order)
	}
}

func TestResolveAuth(t *testing.T) {
	t.Parallel()
	_, reg, tr := kolla(t, testquay.Options{Token: "sekrit"})
	spec := Spec{Host: reg.Host, Namespace: "openstack.kolla", Glob: "*", Tag: "2025.1"}
	for _, tok := range []string{"", "wrong"} {
		_, err := Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{Token: tok}), spec, 4)
		if !errors.Is(err, transport.ErrQuayAuth) || err.Error() != "Authentication failed for quay.io API. Provide a valid quay.io API token for accessing private organizations." {
			t.Errorf("token %q: err = %v", tok, err)
		}
	}
	refs, err := Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{Token: "sekrit"}), spec, 4)
	if err != nil || len(refs) != 7 {
		t.Errorf("with token: %d refs, err %v", len(refs), err)
	}
}

func TestResolveServerError(t *testing.T) {
	t.Parallel()
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Unavailable, Times: -1,
		Match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/keystone/tag/") }})
	q, reg := testquay.Start(t, testquay.Options{}, testregistry.Options{Wrap: in.Wrap})
	for _, n := range []string{"glance-api", "keystone"} {
		q.AddTag("openstack.kolla", n, testquay.Tag{Name: "2025.1", StartTS: time.Unix(1, 0)})
	}
	tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs(), NoRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{}), Spec{Host: reg.Host, Namespace: "openstack.kolla", Glob: "*", Tag: "2025.1"}, 2)
	if !errors.Is(err, transport.ErrStatus) || !strings.Contains(err.Error(), "openstack.kolla/keystone") {
		t.Errorf("err = %v, want a 503 naming keystone", err)
	}
}

// TestResolveBounded: a listing of thousands of repositories (a hostile
// API may send any number) is checked workers at a time, by no more than a
// handful of goroutines, every name answered.
func TestResolveBounded(t *testing.T) { // not parallel: it counts goroutines
	const repos, workers = 2000, 3
	var mu sync.Mutex
	inFlight, most, grew := 0, 0, 0
	base := runtime.NumGoroutine()
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/tag/") {
				mu.Lock()
				grew = max(grew, runtime.NumGoroutine()-base)
				mu.Unlock()
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
			next.ServeHTTP(w, r)
		})
	}
	q, reg := testquay.Start(t, testquay.Options{PageSize: 100}, testregistry.Options{Wrap: wrap})
	march := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	for i := range repos {
		q.AddRepo(testquay.Repo{Namespace: "ns", Name: fmt.Sprintf("r%04d", i), LastModified: &march,
			Tags: []testquay.Tag{{Name: "latest", StartTS: march}}})
	}
	tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	refs, err := Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{}), Spec{Host: reg.Host, Namespace: "ns", Glob: "*", Tag: "latest"}, workers)
	if err != nil || len(refs) != repos {
		t.Fatalf("Resolve = %d images, %v; want %d", len(refs), err, repos)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > workers {
		t.Errorf("%d tag checks at once, want at most %d", most, workers)
	}
	// The server's goroutines (a handful of connections) and ours: far
	// fewer than one per name listed.
	if grew > 200 {
		t.Errorf("%d more goroutines while listing %d repositories", grew, repos)
	}
}

// TestResolveCheckFailsWhileListing: a check that fails while pages are
// still being listed stops the listing, and its error is the one
// returned, not the cancellation it caused.
func TestResolveCheckFailsWhileListing(t *testing.T) {
	t.Parallel()
	var pages atomic.Int32
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Unavailable, Times: -1,
		Match: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/r00/tag/") }})
	count := func(next http.Handler) http.Handler {
		return in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/repository" {
				pages.Add(1)
				time.Sleep(20 * time.Millisecond) // the check answers before the next page
			}
			next.ServeHTTP(w, r)
		}))
	}
	q, reg := testquay.Start(t, testquay.Options{PageSize: 2}, testregistry.Options{Wrap: count})
	march := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		q.AddRepo(testquay.Repo{Namespace: "ns", Name: fmt.Sprintf("r%02d", i), LastModified: &march,
			Tags: []testquay.Tag{{Name: "latest", StartTS: march}}})
	}
	tr, err := transport.New(transport.Options{RootCAs: reg.RootCAs(), NoRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = Resolve(context.Background(), tr.Quay(reg.Host, transport.QuayOptions{}), Spec{Host: reg.Host, Namespace: "ns", Glob: "*", Tag: "latest"}, 2)
	if !errors.Is(err, transport.ErrStatus) || !strings.Contains(err.Error(), "ns/r00") {
		t.Errorf("err = %v, want the 503 of ns/r00", err)
	}
	if n := pages.Load(); n >= 20 {
		t.Errorf("%d pages listed after the check failed, want the listing stopped", n)
	}
}
