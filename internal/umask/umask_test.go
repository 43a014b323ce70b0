package umask

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status string
		want   fs.FileMode
	}{
		{"Name:\tx\nUmask:\t0077\nState:\tR\n", 0o077},
		{"Umask:\t0002\n", 0o002},
		{"Name:\tx\n", Fallback},
		{"Umask:\tzz\n", Fallback},
	}
	for _, tc := range tests {
		if got := parse([]byte(tc.status)); got != tc.want {
			t.Errorf("parse(%q) = %04o, want %04o", tc.status, got, tc.want)
		}
	}
}

// Get agrees with the mode the kernel gives a file created 0666.
func TestGetMatchesKernel(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := File(), fi.Mode().Perm(); got != want {
		t.Errorf("File() = %04o, the kernel made %04o", got, want)
	}
}

// BenchmarkFile is the cost of one File() call, which the outputs make for
// every file they create.
func BenchmarkFile(b *testing.B) {
	for b.Loop() {
		_ = File()
	}
}

// BenchmarkRead is what File() cost when it read /proc/self/status each
// time.
func BenchmarkRead(b *testing.B) {
	for b.Loop() {
		_ = read()
	}
}
