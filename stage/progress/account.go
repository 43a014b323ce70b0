package progress

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/accounting"
	"github.com/occystrap/occystrap/stage"
)

// Account is the last stage before the sink: it counts into Image the
// layers the sink gets, the bytes of sources that do not count their own,
// and the digest of the config the sink gets. It passes every item on
// unchanged.
type Account struct{ Image *accounting.Image }

// Properties names the stage in the run's report.
func (s *Account) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "account"}
}

// Run counts and passes on every item of in.
func (s *Account) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	for it := range in {
		switch it.Kind {
		case stage.KindLayer:
			s.Image.Layer()
			if !s.Image.SourceFed() && it.Size > 0 {
				s.Image.AddSize(it.Size)
				if it.Body != nil {
					s.Image.Expect(it.Size)
					s.Image.Add(it.Size)
				}
			}
		case stage.KindConfig:
			s.Image.SetConfigDigest(digest.FromBytes(it.Data).String())
		}
		if err := stage.Send(ctx, out, it); err != nil {
			for it := range in {
				_ = it.Release()
			}
			return err
		}
	}
	return nil
}

// StagesEvent adds each component's figures of rep to e as an array of
// objects.
func StagesEvent(e *zerolog.Event, rep *stage.Report) *zerolog.Event {
	arr := zerolog.Arr()
	for _, s := range rep.Stages {
		arr = arr.Dict(zerolog.Dict().Str("stage", s.Name).Int64("items", s.Items).Int64("layers", s.Layers).
			Int64("elapsed_ms", s.Elapsed.Milliseconds()))
	}
	return e.Array("stages", arr)
}
