package stage_test

import (
	"context"
	"testing"

	"github.com/occystrap/occystrap/stage"
)

type passthroughSource struct{ used bool }

func (s *passthroughSource) Wire(w stage.Wiring) { s.used = w.Compressed }
func (s *passthroughSource) Properties() stage.SourceProperties {
	return stage.SourceProperties{}
}
func (s *passthroughSource) Emit(context.Context, chan<- stage.Item) error {
	return nil
}

type wantingSink struct{ wants bool }

func (s wantingSink) Properties() stage.SinkProperties {
	return stage.SinkProperties{Compressed: s.wants}
}
func (s wantingSink) Consume(_ context.Context, in <-chan stage.Item) error {
	for it := range in {
		_ = it.Release()
	}
	return nil
}

type plainSink struct{}

func (plainSink) Properties() stage.SinkProperties { return stage.SinkProperties{} }

func (plainSink) Consume(_ context.Context, in <-chan stage.Item) error {
	for it := range in {
		_ = it.Release()
	}
	return nil
}

type changer struct {
	passStage
	changes bool
}

func (c changer) Properties() stage.StageProperties {
	return stage.StageProperties{ChangesContent: c.changes}
}

func TestPassthroughWiredOnlyWhenNothingChangesContent(t *testing.T) {
	tests := []struct {
		name   string
		sink   stage.Sink
		stages []stage.Stage
		want   bool
	}{
		{"wanted, no stages", wantingSink{true}, nil, true},
		{"wanted, passthrough stage", wantingSink{true}, []stage.Stage{changer{passStage{-1}, false}}, true},
		{"wanted, plain stage", wantingSink{true}, []stage.Stage{passStage{-1}}, true},
		{"wanted, content-changing stage", wantingSink{true}, []stage.Stage{passStage{-1}, changer{passStage{-1}, true}}, false},
		{"not wanted", wantingSink{false}, nil, false},
		{"sink without the capability", plainSink{}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &passthroughSource{}
			if _, err := stage.Run(context.Background(), src, tc.stages, tc.sink, stage.Options{}); err != nil {
				t.Fatal(err)
			}
			if src.used != tc.want {
				t.Errorf("Wiring.Compressed: %v, want %v", src.used, tc.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[stage.Kind]string{stage.KindConfig: "config", stage.KindLayer: "layer", stage.KindManifest: "manifest"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}
