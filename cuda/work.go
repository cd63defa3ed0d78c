//go:build cuda

package cuda

import (
	"maps"

	"github.com/qmulgpu/qmulgpu/engine"
)

// workCounts counts what a Backend queues on its stream, by op (see
// engine.WorkCounter). The counts are the same on any GPU and on the
// emulated device: they follow from the ops called and their shapes.
type workCounts struct {
	perOp map[string]engine.OpWork
}

func (w *workCounts) add(op string, v engine.OpWork) {
	if w.perOp == nil {
		w.perOp = make(map[string]engine.OpWork)
	}
	w.perOp[op] = w.perOp[op].Add(v)
}

// Work implements engine.WorkCounter.
func (b *Backend) Work() engine.Work {
	w := engine.Work{PerOp: maps.Clone(b.work.perOp)}
	for _, v := range b.work.perOp {
		w.OpWork = w.OpWork.Add(v)
	}
	return w
}

// memset32 fills n 32-bit words at p with v for op.
func (b *Backend) memset32(op string, p devPtr, v uint32, n uint64) {
	b.work.add(op, engine.OpWork{MemoryOps: 1})
	b.fail(op, b.x.memset32(p, v, n))
}

// memset8 fills n bytes at p with v for op.
func (b *Backend) memset8(op string, p devPtr, v uint8, n uint64) {
	b.work.add(op, engine.OpWork{MemoryOps: 1})
	b.fail(op, b.x.memset8(p, v, n))
}
