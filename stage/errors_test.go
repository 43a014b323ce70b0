package stage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/occystrap/occystrap/stage"
)

func TestSentinelIsItsCategory(t *testing.T) {
	t.Parallel()
	own := stage.Sentinel(stage.ErrNoConfig, "No config file was processed")
	err := fmt.Errorf("push x: %w", own)
	if !errors.Is(err, own) || !errors.Is(err, stage.ErrNoConfig) {
		t.Errorf("%v is not both its sentinel and its category", err)
	}
	if errors.Is(err, stage.ErrClosed) {
		t.Errorf("%v is ErrClosed", err)
	}
	if got := own.Error(); got != "No config file was processed" {
		t.Errorf("message %q, want the package's own", got)
	}
}

func TestFirstErrorKeepsTheFirstReal(t *testing.T) {
	t.Parallel()
	real, later := errors.New("disk full"), errors.New("later")
	tests := []struct {
		name string
		errs []error
		want error
		real error
	}{
		{"nothing", nil, nil, nil},
		{"nil ignored", []error{nil}, nil, nil},
		{"cancellation only", []error{context.Canceled}, context.Canceled, nil},
		{"real after cancellation", []error{context.Canceled, real, later}, real, real},
		{"deadline is a cancellation", []error{fmt.Errorf("wait: %w", context.DeadlineExceeded), real}, real, real},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f stage.FirstError
			for _, err := range tc.errs {
				if got := f.Record(err); got != err {
					t.Errorf("Record(%v) = %v", err, got)
				}
			}
			if got := f.Err(); got != tc.want {
				t.Errorf("Err() = %v, want %v", got, tc.want)
			}
			if got := f.Real(); got != tc.real {
				t.Errorf("Real() = %v, want %v", got, tc.real)
			}
		})
	}
}
