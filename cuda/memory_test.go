//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSizeClass(t *testing.T) {
	tests := []struct{ bytes, want uint64 }{
		{1, 512},
		{512, 512},
		{513, 1024},
		{4096, 4096},
		{4097, 4608},
		{5000, 5120},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<17},
		{1 << 28, 1 << 28},
		{3<<27 + 5, 13 << 25},
	}
	for _, tc := range tests {
		if got := sizeClass(tc.bytes); got != tc.want {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.bytes, got, tc.want)
		}
	}
	for b := uint64(1); b < 1<<34; b = b*3/2 + 1 {
		c := sizeClass(b)
		if c < b || (b > 4096 && c > b+b/8) {
			t.Fatalf("sizeClass(%d) = %d: outside [b, 9b/8]", b, c)
		}
		if sizeClass(c) != c {
			t.Fatalf("sizeClass(%d) = %d is not its own class", b, c)
		}
	}
}

// fakeBlocks is a blockSource with a capacity.
type fakeBlocks struct {
	capacity, used uint64
	next           devPtr
	live           map[devPtr]uint64
	allocs, frees  int
	syncs          int
}

func newFakeBlocks(capacity uint64) *fakeBlocks {
	return &fakeBlocks{capacity: capacity, next: 1 << 20, live: map[devPtr]uint64{}}
}

func (f *fakeBlocks) alloc(bytes uint64) (devPtr, error) {
	if f.used+bytes > f.capacity {
		return 0, &Error{Call: fmt.Sprintf("cuMemAlloc_v2(%d bytes)", bytes), Code: 2,
			Name: "CUDA_ERROR_OUT_OF_MEMORY", Text: "out of memory"}
	}
	f.allocs++
	f.used += bytes
	p := f.next
	f.next += devPtr(bytes)
	f.live[p] = bytes
	return p, nil
}

func (f *fakeBlocks) free(p devPtr) error {
	f.frees++
	f.used -= f.live[p]
	delete(f.live, p)
	return nil
}

func (f *fakeBlocks) memInfo() (free, total uint64, err error) {
	return f.capacity - f.used, f.capacity, nil
}

func (f *fakeBlocks) sync() error { f.syncs++; return nil }

func TestAllocatorReusesBlocks(t *testing.T) {
	src := newFakeBlocks(1 << 30)
	a := newAllocator(src, false)
	p, class, err := a.get(1000)
	if err != nil || class != 1024 {
		t.Fatalf("get(1000) = %v, class %d, %v", p, class, err)
	}
	a.put(p, class)
	q, _, err := a.get(900)
	if err != nil || q != p {
		t.Fatalf("get(900) after a free 1000-byte block = %#x, %v; want the cached %#x", q, err, p)
	}
	r, _, _ := a.get(900)
	if r == p || src.allocs != 2 {
		t.Errorf("second get(900) = %#x (first %#x), %d device allocations; want a new block", r, p, src.allocs)
	}
	if a.live != 2048 || a.cached != 0 {
		t.Errorf("live %d, cached %d bytes; want 2048, 0", a.live, a.cached)
	}
}

func TestAllocatorReleasesCacheWhenOutOfMemory(t *testing.T) {
	src := newFakeBlocks(3 << 20)
	a := newAllocator(src, false)
	var held []devPtr
	for range 3 {
		p, class, err := a.get(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
		a.put(p, class) // cached, still allocated on the device
	}
	if a.cached != 1<<20 {
		// The three gets reused one block.
		t.Fatalf("cached %d bytes, want one 1 MiB block", a.cached)
	}
	p, _, err := a.get(1 << 20)
	if err != nil || p != held[0] {
		t.Fatalf("get = %#x, %v", p, err)
	}
	// 2.5 MiB does not fit beside the 1 MiB in use, and the cache is empty.
	if _, _, err := a.get(5 << 19); err == nil {
		t.Fatal("a 2.5 MiB allocation beside 1 MiB in a 3 MiB device succeeded")
	}
	// Once the 1 MiB is back in the cache, the allocator releases it and
	// the retry succeeds.
	a.put(p, 1<<20)
	q, _, err := a.get(5 << 19)
	if err != nil {
		t.Fatalf("a 2.5 MiB allocation with only cached memory in use failed: %v", err)
	}
	if src.syncs == 0 || src.frees == 0 {
		t.Errorf("the cache was released without waiting for the stream (%d syncs, %d frees)", src.syncs, src.frees)
	}
	if q == 0 || a.cached != 0 {
		t.Errorf("got %#x with %d bytes still cached", q, a.cached)
	}
}

func TestAllocatorOutOfMemoryError(t *testing.T) {
	a := newAllocator(newFakeBlocks(1<<20), false)
	_, _, err := a.get(2 << 20)
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) {
		t.Fatalf("error %v is not an *OutOfMemoryError", err)
	}
	msg := err.Error()
	for _, want := range []string{"2.0 MiB (2097152 bytes)", "1.0 MiB of 1.0 MiB free", "try a smaller --batch",
		"cuMemAlloc_v2(2097152 bytes): CUDA_ERROR_OUT_OF_MEMORY: out of memory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if !isOutOfMemory(err) {
		t.Errorf("isOutOfMemory(%v) is false", err)
	}
}

func TestExactAllocator(t *testing.T) {
	src := newFakeBlocks(1 << 30)
	a := newAllocator(src, true)
	p, class, err := a.get(1000)
	if err != nil || class != 1000 {
		t.Fatalf("get(1000) = %v, class %d, %v; want a block of exactly 1000 bytes", p, class, err)
	}
	a.put(p, class)
	if q, _, _ := a.get(1000); q != p {
		t.Errorf("get(1000) after a free 1000-byte block = %#x, want the cached %#x", q, p)
	}
	if q, class, _ := a.get(900); q == p || class != 900 {
		t.Errorf("get(900) = %#x, class %d: want a new block of 900 bytes", q, class)
	}
}
