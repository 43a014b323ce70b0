package transport

import "testing"

func TestRangeEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0-99", 100, true},
		{"bytes=0-99", 100, true},
		{" 0-0 ", 1, true},
		{"", 0, false},
		{"0-", 0, false},
		{"0-x", 0, false},
		{"0--5", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := rangeEnd(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("rangeEnd(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestUploadWithDigest(t *testing.T) {
	tests := []struct{ loc, want string }{
		{"https://r.example/v2/a/blobs/uploads/u?_state=s", "https://r.example/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab"},
		{"https://r.example/v2/a/blobs/uploads/u", "https://r.example/v2/a/blobs/uploads/u?digest=sha256%3Aab"},
	}
	for _, tc := range tests {
		up := &Upload{loc: tc.loc}
		got, err := up.withDigest("sha256:ab")
		if err != nil || got != tc.want {
			t.Errorf("withDigest(%s) = %s, %v; want %s", tc.loc, got, err, tc.want)
		}
	}
}
