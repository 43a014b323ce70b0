package docker_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testdocker"
	dockersink "github.com/occystrap/occystrap/sinks/docker"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/stagetest"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

func TestMain(m *testing.M) { stagetest.Main(m) }

func built(seed string) fixture.Built {
	return fixture.Build(fixture.Image{Name: "src/" + seed, Tag: "v1", Layers: []fixture.Layer{
		{fixture.Dir("etc", 0o755), fixture.File("etc/"+seed, seed, 0o644)},
		{fixture.File("b", "b", 0o600), fixture.Symlink("c", "b")},
		{fixture.Whiteout("etc/" + seed)},
	}})
}

func items(b fixture.Built, rel *stagetest.Released) []stage.Item {
	its := stagetest.Items(b.Config, b.ConfigDigest.Encoded()+".json", b.Layers, rel)
	for i := range its[1:] {
		its[i+1].DiffID = b.DiffIDs[i]
	}
	return its
}

func setup(t *testing.T) (*testdocker.Engine, *dockerclient.Client) {
	t.Helper()
	eng := testdocker.Require(t)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	return eng, c
}

func load(ctx context.Context, o *dockersink.Output, its []stage.Item) error {
	sink, err := o.Sink(stage.Image{Name: "src/app", Tag: "v1"})
	if err != nil {
		return err
	}
	return stagetest.Run(ctx, sink, its)
}

func TestLoadTagsDestination(t *testing.T) {
	eng, c := setup(t)
	ctx := context.Background()
	for _, dest := range []stage.Image{
		{Name: "occy-sink/app", Tag: "v2"},
		{Name: "localhost:5000/deep/path/app", Tag: "2025.1"},
		{Name: "plain", Tag: "latest"},
	} {
		t.Run(dest.Name, func(t *testing.T) {
			ref := dest.Name + ":" + dest.Tag
			t.Cleanup(func() { _ = eng.Remove(ctx, ref) })
			b := built(strings.ReplaceAll(dest.Name, "/", "_"))
			var rel stagetest.Released
			o := dockersink.New(c, dest, dockersink.Options{TempDir: t.TempDir()})
			defer o.Close()
			if err := load(ctx, o, items(b, &rel)); err != nil {
				t.Fatal(err)
			}
			if rel.Count() != 3 {
				t.Errorf("%d layer bodies released, want 3", rel.Count())
			}
			info, err := c.Inspect(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != b.ConfigDigest {
				t.Errorf("Id %s, want the config digest %s", info.ID, b.ConfigDigest)
			}
			if !slices.Contains(info.RepoTags, ref) {
				t.Errorf("RepoTags %v, want %s among them", info.RepoTags, ref)
			}
			if d := cmp.Diff(b.DiffIDs, info.RootFS.Layers); d != "" {
				t.Errorf("layers (-want +got):\n%s", d)
			}
			problems, err := o.Verify(ctx, stage.Image{}, false)
			if err != nil || len(problems) != 0 {
				t.Errorf("Verify = %v, %v; want no problems", problems, err)
			}
			if _, err := o.Sink(dest); !errors.Is(err, dockersink.ErrOneImage) {
				t.Errorf("second Sink: %v, want ErrOneImage", err)
			}
		})
	}
}

func TestVerifyProblems(t *testing.T) {
	eng, c := setup(t)
	ctx := context.Background()
	dest := stage.Image{Name: "occy-sink/verify", Tag: "v1"}
	ref := "occy-sink/verify:v1"
	t.Cleanup(func() { _ = eng.Remove(ctx, ref) })
	o := dockersink.New(c, dest, dockersink.Options{})
	b := built("verify")
	if err := load(ctx, o, items(b, nil)); err != nil {
		t.Fatal(err)
	}

	// Another image under the same tag.
	other := dockersink.New(c, dest, dockersink.Options{})
	if err := load(ctx, other, items(built("other"), nil)); err != nil {
		t.Fatal(err)
	}
	problems, err := o.Verify(ctx, dest, false)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "ID mismatch: expected "+b.ConfigDigest.String()) {
		t.Errorf("after retag: Verify = %q, %v; want one ID mismatch", problems, err)
	}

	if err := eng.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	problems, err = o.Verify(ctx, dest, false)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "not found") {
		t.Errorf("after remove: Verify = %q, %v; want one not found", problems, err)
	}

	dead := dockersink.New(dockerclient.New(filepath.Join(t.TempDir(), "none.sock")), dest, dockersink.Options{})
	if _, err := dead.Verify(ctx, dest, false); err == nil || !strings.Contains(err.Error(), "Cannot connect") || !errors.Is(err, dockerclient.ErrConnect) {
		t.Errorf("Verify without an engine: %v, want a Cannot connect error", err)
	}
}

func TestLoadFailures(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	boom := errors.New("source broke")
	tests := []struct {
		name string
		mod  func(b fixture.Built, its []stage.Item) []stage.Item
		want func(error) bool
		text string
	}{
		{"engine rejects a config that is not JSON", func(b fixture.Built, its []stage.Item) []stage.Item {
			its[0].Data = []byte("not json")
			return its
		}, func(err error) bool { return errors.Is(err, dockerclient.ErrEngine) }, "load occy-sink/fail:v1 into docker"},
		{"a layer body fails mid-stream", func(b fixture.Built, its []stage.Item) []stage.Item {
			l := b.Layers[1]
			its[2].Body = &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) {
				return io.NopCloser(stagetest.FailingReader(l, len(l)/2, boom)), nil
			}}
			return its
		}, func(err error) bool { return errors.Is(err, boom) }, "source broke"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := built("fail")
			o := dockersink.New(c, stage.Image{Name: "occy-sink/fail", Tag: "v1"}, dockersink.Options{})
			err := load(ctx, o, tc.mod(b, items(b, nil)))
			if err == nil || !tc.want(err) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want one containing %q", err, tc.text)
			}
		})
	}
}

func TestSinkRefusedAfterClose(t *testing.T) {
	o := dockersink.New(dockerclient.New("/nonexistent.sock"), stage.Image{Name: "a", Tag: "b"}, dockersink.Options{})
	_ = o.Close()
	if _, err := o.Sink(stage.Image{}); !errors.Is(err, dockersink.ErrClosed) {
		t.Errorf("Sink after Close: %v", err)
	}
}
