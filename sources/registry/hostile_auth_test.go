package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/transport"
)

// These tests put a hostile registry in front of the source: the reference
// registry behind the fault injector, scripted to redirect to a host with
// its own challenge, to send bodies that never end or stop sending, and to
// serve manifests that lie about sizes.

// TestRedirectTargetChallengeGetsNoCredentials: a blob GET redirected to
// another host that answers 401 with a Bearer challenge naming its own token
// endpoint must not make us send the registry's credentials there.
func TestRedirectTargetChallengeGetsNoCredentials(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 40, Layers: 2})
	other := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken})
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Redirect, Match: testregistry.WithAuth(testregistry.IsBlobGet), Times: -1})
	reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: testregistry.AuthToken, Username: "alice", Password: "s3cret", Wrap: in.Wrap})
	in.SetRedirectTarget(other.URL)
	if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, reg, nil)
	_, _, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1", reg: transport.RegistryOptions{Insecure: true, Username: "alice", Password: "s3cret"}})
	if in.Fired(testregistry.Redirect) == 0 {
		t.Fatal("no redirect happened")
	}
	if n := other.CredentialedTokenRequests(); n != 0 {
		t.Errorf("the redirect target's token endpoint got our credentials %d times", n)
	}
	if !errors.Is(err, transport.ErrOtherHost) || !errors.Is(err, transport.ErrUnauthorized) {
		t.Errorf("got %v, want ErrOtherHost and ErrUnauthorized", err)
	}
}
