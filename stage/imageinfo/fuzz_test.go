package imageinfo

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseMeta feeds hostile manifests and configs to the parsers behind
// info and check: they fail cleanly or produce a document, and the text
// printed from it holds no control character but newlines and tabs (the
// names and strings it quotes come from the image).
func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":10,"digest":"sha256:aa"}]}`),
		[]byte(`{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Entrypoint":["/bin/sh"],"Env":["A=1"],"Labels":{"k":"v"},"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:bb"]},"history":[{"created_by":"RUN \u001b[2J x\ny"}]}`))
	f.Add([]byte(`{}`), []byte(`{"config":{"Labels":{"\u001b]0;x\u0007":"\u009b31m"}}}`))
	f.Add([]byte(`[]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		m, err := ParseMeta("img\x1b[2J", "tag\n", manifest, config)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteInfoText(&out, Info(m)); err != nil {
			t.Fatalf("info text: %v", err)
		}
		if err := WriteCheckText(&out, CheckMetadata(m), true); err != nil {
			t.Fatalf("check text: %v", err)
		}
		if err := WriteJSON(&out, Info(m)); err != nil {
			t.Fatalf("info JSON: %v", err)
		}
		if i := strings.IndexFunc(out.String(), func(r rune) bool {
			return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0
		}); i >= 0 {
			t.Fatalf("control character %q printed:\n%q", out.String()[i], out.String())
		}
	})
}
