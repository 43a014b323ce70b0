//go:build !race

package registry_test

const rssFactor = 1
