package progress

import (
	"context"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/accounting"
)

// Start reports run's progress (see New) until the returned stop is
// called; stop waits for the reporter and clears the live line. The
// reporter runs on a pool Start owns, ended by stop or by ctx.
func Start(ctx context.Context, run *accounting.Run, log zerolog.Logger, o Options) (stop func()) {
	rep := New(run, log, o)
	rctx, cancel := context.WithCancel(ctx)
	bg := pool.New().WithContext(rctx)
	bg.Go(func(ctx context.Context) error { rep.Run(ctx); return nil })
	return func() {
		cancel()
		_ = bg.Wait()
		rep.Clear()
	}
}
