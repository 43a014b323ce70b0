package registry_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
)

// TestConformance runs the sink contract's suite on registry:// against
// the in-process registry (TLS, HTTP/2); each check pushes to a repository
// of its own, and the manifest pushed (its digest, with the layers
// compressed the same way whatever their order) is what is compared.
func TestConformance(t *testing.T) {
	r := testregistry.Start(t, testregistry.Options{})
	tr := newTransport(t, []*testregistry.Registry{r}, 3)
	var n atomic.Int64
	repos := map[stage.Output]string{}
	stagetest.RunSinkConformance(t, stagetest.SinkSuite{
		New: func(t *testing.T) stage.Output {
			repo := fmt.Sprintf("conformance/app%d", n.Add(1))
			o := registrysink.NewOutput(tr, registrysink.Options{Host: r.Host, Repo: repo, Tag: "v1", Registry: regOpts(r, false)})
			repos[o] = repo
			return o
		},
		View: func(t *testing.T, out stage.Output, _ stage.Image) []string {
			m := manifestOf(t, tr, r, false, repos[out], "v1")
			return []string{m.MediaType, m.Digest.String()}
		},
		LeakOptions: registryLeaks,
	})
}

// registryLeaks are the goroutines that outlive a run by design: the
// registry app's background workers and the idle connections of the
// client and the servers (as TestMain's list).
var registryLeaks = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
	goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
	goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
	goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
	goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
}
