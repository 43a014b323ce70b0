package gate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnter(t *testing.T) {
	type answer struct{ Closed, Again bool }
	tests := []struct {
		name  string
		one   bool
		calls []string // "enter" or "close", in order
		want  []answer // one per "enter"
	}{
		{name: "many images, open", calls: []string{"enter", "enter"}, want: []answer{{}, {}}},
		{name: "many images, closed", calls: []string{"enter", "close", "enter"}, want: []answer{{}, {Closed: true}}},
		{name: "one image, second sink", one: true, calls: []string{"enter", "enter", "enter"}, want: []answer{{}, {Again: true}, {Again: true}}},
		{name: "one image, closed first", one: true, calls: []string{"close", "close", "enter"}, want: []answer{{Closed: true}}},
		{name: "one image, closed after use", one: true, calls: []string{"enter", "close", "enter"}, want: []answer{{}, {Closed: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gate
			var got []answer
			for _, c := range tt.calls {
				if c == "close" {
					g.Close()
					continue
				}
				closed, again := g.Enter(tt.one)
				got = append(got, answer{closed, again})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}
