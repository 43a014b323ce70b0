package stage

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestOrderedHandsOverInOrder(t *testing.T) {
	const n = 200
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	var o Ordered[int]
	var got []int
	for _, i := range perm {
		if err := o.Put(i, i*10); err != nil {
			t.Fatal(err)
		}
		for v, ok := o.Pop(); ok; v, ok = o.Pop() {
			got = append(got, v)
		}
	}
	if len(got) != n || o.Held() != 0 || o.Next() != n {
		t.Fatalf("handed over %d, held %d, next %d; want %d, 0, %d", len(got), o.Held(), o.Next(), n, n)
	}
	for i, v := range got {
		if v != i*10 {
			t.Fatalf("position %d: value %d, want %d", i, v, i*10)
		}
	}
}

func TestOrderedRefusesDuplicates(t *testing.T) {
	var o Ordered[int]
	if err := o.Put(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := o.Put(1, 1); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second put of held index: %v, want ErrDuplicate", err)
	}
	if err := o.Put(0, 0); err != nil {
		t.Fatal(err)
	}
	o.Pop()
	if err := o.Put(0, 0); !errors.Is(err, ErrDuplicate) {
		t.Errorf("put of an index handed over: %v, want ErrDuplicate", err)
	}
	if err := o.Put(-1, 0); err == nil {
		t.Error("negative index accepted")
	}
}

func TestOrderedDrainReleasesHeld(t *testing.T) {
	var o Ordered[int]
	for _, i := range []int{3, 5, 7} {
		if err := o.Put(i, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := o.Pop(); ok {
		t.Fatal("popped before index 0 arrived")
	}
	sum := 0
	o.Drain(func(v int) { sum += v })
	if sum != 15 || o.Held() != 0 {
		t.Errorf("drained sum %d held %d; want 15, 0", sum, o.Held())
	}
}
