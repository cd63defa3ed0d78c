package cpu

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
)

// opFamily is the group an op's time is counted in by TimeOps.
type opFamily uint8

// The op families, in the order OpTimes lists them.
const (
	opConvForward opFamily = iota
	opConvData
	opConvFilter
	opLinear
	opBatchNorm
	opActivation
	opPool
	opQuant
	opLoss
	opSGD
	opElementwise
	opReduce
	opPerSample
	opGather
	opFamilies
)

var opNames = [opFamilies]string{
	opConvForward: "conv forward",
	opConvData:    "conv dX",
	opConvFilter:  "conv dW",
	opLinear:      "linear (GEMM, bias)",
	opBatchNorm:   "BatchNorm (+ReLU)",
	opActivation:  "activations",
	opPool:        "pooling",
	opQuant:       "quantizers",
	opLoss:        "loss",
	opSGD:         "SGD",
	opElementwise: "add, scale, fill, copy",
	opReduce:      "norms and dots",
	opPerSample:   "per-sample norms",
	opGather:      "gather",
}

// opTimes accumulates the wall time, processor time and calls of each op
// family.
type opTimes struct {
	mu    sync.Mutex
	calls [opFamilies]int64
	spent [opFamilies]time.Duration
	cpu   [opFamilies]time.Duration
}

func (t *opTimes) add(f opFamily, wall, cpu time.Duration) {
	t.mu.Lock()
	t.calls[f]++
	t.spent[f] += wall
	t.cpu[f] += cpu
	t.mu.Unlock()
}

// processCPU is the processor time of the whole process so far: during an
// op, the time of every thread working on it, which other load on the
// machine does not inflate as it does wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// noSpan ends a span that is not timed.
func noSpan() {}

// span starts timing one call of an op of family f, when timing is on, and
// returns the function that ends it.
func (b *Backend) span(f opFamily) func() {
	t := b.times.Load()
	if t == nil {
		return noSpan
	}
	start, cpu := time.Now(), processCPU()
	return func() { t.add(f, time.Since(start), processCPU()-cpu) }
}

var _ engine.OpTimer = (*Backend)(nil)

// TimeOps implements engine.OpTimer.
func (b *Backend) TimeOps(on bool) {
	if on {
		b.times.Store(&opTimes{})
	} else {
		b.times.Store(nil)
	}
}

// OpTimes implements engine.OpTimer: the families that were called, in a
// fixed order.
func (b *Backend) OpTimes() []engine.OpTime {
	t := b.times.Load()
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []engine.OpTime
	for f := opFamily(0); f < opFamilies; f++ {
		if t.calls[f] > 0 {
			out = append(out, engine.OpTime{Op: opNames[f], Calls: t.calls[f], Seconds: t.spent[f].Seconds(),
				CPUSeconds: t.cpu[f].Seconds()})
		}
	}
	return out
}

// timesOn is the timer's slot in Backend: nil while timing is off.
type timesOn = atomic.Pointer[opTimes]
