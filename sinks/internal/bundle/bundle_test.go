package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRuntimeConfig(t *testing.T) {
	t.Parallel()
	b, err := RuntimeConfig([]byte(`{"config":{"Entrypoint":["/e"],"Cmd":["c"],"WorkingDir":"/w\u00e9"}}`))
	if err != nil {
		t.Fatal(err)
	}
	// Python's json.dumps escapes non-ASCII (ensure_ascii) and sorts keys.
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if want := `"cwd": "/w\u00e9"`; !strings.Contains(string(b), want) {
		t.Errorf("cwd not written as Python does (%s):\n%s", want, b)
	}
	if !strings.HasPrefix(string(b), "{\n    \"hostname\": \"occystrap\",\n    \"linux\": {\n        \"maskedPaths\": [") {
		t.Errorf("keys not sorted or not indented by 4:\n%s", b)
	}
	if _, err := RuntimeConfig([]byte(`not json`)); err == nil {
		t.Error("RuntimeConfig of an invalid config succeeded")
	}
}

func TestWriteAndVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got := Verify(dir); len(got) != 3 {
		t.Errorf("Verify of an empty directory = %q, want 3 problems", got)
	}
	if err := os.Mkdir(filepath.Join(dir, RootFS), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, []byte(`{"config":{}}`)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string(nil), Verify(dir)); d != "" {
		t.Errorf("Verify after Write (-want +got):\n%s", d)
	}
}
