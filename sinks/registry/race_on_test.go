//go:build race

package registry_test

// The race detector's shadow memory multiplies RSS; the bound is loosened
// accordingly (the real bound is checked without -race).
const rssFactor = 4
