//go:build cuda

package cuda

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

// TestWorkCounts checks the counts of a few ops against what they queue on
// the fake executor.
func TestWorkCounts(t *testing.T) {
	b, f := newFakeBackend(t)
	before := b.Work()
	x := b.Alloc(engine.Float32, 64, 8)           // one block
	y := b.Alloc(engine.Float32, 64, 8)           // another
	w := b.Alloc(engine.Float32, 8, 8)            // a third
	b.Fill(x, 1)                                  // one memset
	b.Scale(x, 2)                                 // one launch
	b.Gemm(false, false, 64, 8, 8, 1, x, w, 0, y) // one cuBLAS call
	got := b.Work().OpWork.Sub(before.OpWork)
	want := engine.OpWork{Launches: 1, LibraryCalls: 1, MemoryOps: 1, Allocs: 3,
		AllocBytes: int64(2*sizeClass(64*8*4) + sizeClass(8*8*4))}
	if got != want {
		t.Errorf("work %+v, want %+v", got, want)
	}
	if n := int64(len(f.launches)); n != got.Launches {
		t.Errorf("%d launches counted, %d queued", got.Launches, n)
	}
	per := b.Work().PerOp
	if per["Scale"].Launches != 1 || per["Fill"].MemoryOps != 1 || per["Alloc"].Allocs < 3 {
		t.Errorf("per op: %+v", per)
	}
	for _, tt := range []*engine.Tensor{x, y, w} {
		b.Free(tt)
	}
}
