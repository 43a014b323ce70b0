// Package corpus generates the benchmark's deterministic, Kolla-like image
// corpus: images in groups that share base layers, each layer a real
// uncompressed tar (many files, directories, symlinks, hardlinks, whiteouts
// and an opaque directory) gzipped at a ratio near 3:1.
//
// Generate is a pure function of its Params (seeded, fixed mtimes and
// owners): the same Params give the same blobs, byte for byte. Load caches a
// generated corpus under a directory keyed by the Params (and the generator
// version), so reruns read it back instead of generating it again.
//
// Layout of a cached corpus: blobs/sha256/<hex> (gzipped layers, configs and
// manifests) and corpus.json (the Corpus value). Generation runs layers on
// every CPU; everything else is single-goroutine.
package corpus
