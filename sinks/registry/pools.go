package registry

import (
	"sync"
)

// chunkPools holds one pool of read-ahead buffers per size, shared by every
// sink of the process (images of a run reuse their buffers).
var chunkPools sync.Map // int → *sync.Pool

func chunkPool(size int) *sync.Pool {
	if p, ok := chunkPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := chunkPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}
