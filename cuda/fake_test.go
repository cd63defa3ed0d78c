//go:build cuda

package cuda

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/cuda/internal/kernelgen"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// The fake executor runs a Backend without a GPU: memory is host memory
// (so copies and fills are real), kernels are not run, but every launch's
// shape and pointer arguments (which must lie in live allocations) are
// checked, and every GEMM's operands against the allocations they must
// fit in. The arguments' types cannot be wrong: the generated launchers
// (X_kernels.go) fix them.

// kernelSource is kernels/ as kernelgen reads it.
var kernelSource = sync.OnceValues(func() (*kernelgen.Source, error) {
	// go test runs in cuda/; a prebuilt test binary may run from the
	// repository root.
	for _, root := range []string{"..", "."} {
		if _, err := os.Stat(filepath.Join(root, "kernels")); err == nil {
			return kernelgen.ReadSources(root, "kernels")
		}
	}
	return nil, fmt.Errorf("no kernels/ in .. or .: run the tests from cuda/ or the repository root")
})

// fakeLaunch records a launch.
type fakeLaunch struct {
	kernel      string
	grid, block dim3
	args        []any
}

// fakeGPU is an executor on host memory.
type fakeGPU struct {
	t        *testing.T
	next     devPtr
	blocks   map[devPtr][]byte
	capacity uint64 // bytes allocatable at once; 0: unlimited
	used     uint64
	launches []fakeLaunch
	gemms    []gemmArgs
	syncs    int
	failNext error // returned by the next launch
	tf32     bool
	dnn      convLib // cuDNN, when a test provides one
}

func newFakeGPU(t *testing.T) *fakeGPU {
	return &fakeGPU{t: t, next: 1 << 32, blocks: map[devPtr][]byte{}}
}

// newFakeBackend returns a backend on a fake GPU with 4 SMs.
func newFakeBackend(t *testing.T) (*Backend, *fakeGPU) {
	t.Helper()
	f := newFakeGPU(t)
	b, err := newBackend(f, 0, deviceInfo{name: "Fake GPU", major: 9, minor: 0, sms: 4, totalMem: 80 << 30}, device.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

func (f *fakeGPU) alloc(bytes uint64) (devPtr, error) {
	if f.capacity > 0 && f.used+bytes > f.capacity {
		return 0, &Error{Call: fmt.Sprintf("cuMemAlloc_v2(%d bytes)", bytes), Code: 2,
			Name: "CUDA_ERROR_OUT_OF_MEMORY", Text: "out of memory"}
	}
	p := f.next
	f.next += devPtr((bytes+255)/256*256 + 256) // a gap, so that overruns miss every block
	f.blocks[p] = make([]byte, bytes)
	f.used += bytes
	return p, nil
}

func (f *fakeGPU) free(p devPtr) error {
	b, ok := f.blocks[p]
	if !ok {
		f.t.Errorf("free of %#x, which is not an allocation", p)
		return nil
	}
	f.used -= uint64(len(b))
	delete(f.blocks, p)
	return nil
}

func (f *fakeGPU) memInfo() (free, total uint64, err error) {
	if f.capacity == 0 {
		return 0, 0, fmt.Errorf("unlimited")
	}
	return f.capacity - f.used, f.capacity, nil
}

func (f *fakeGPU) sync() error { f.syncs++; return nil }

// mem returns the bytes [p, p+n) of a live allocation, or an error.
func (f *fakeGPU) mem(p devPtr, n uint64) ([]byte, error) {
	for base, b := range f.blocks {
		if p >= base && p+devPtr(n) <= base+devPtr(len(b)) {
			return b[p-base : uint64(p-base)+n], nil
		}
	}
	return nil, fmt.Errorf("device range [%#x, %#x) is not inside one allocation", p, p+devPtr(n))
}

func (f *fakeGPU) mustMem(p devPtr, n uint64) []byte {
	f.t.Helper()
	b, err := f.mem(p, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fakeGPU) upload(dst devPtr, src unsafe.Pointer, bytes uint64) error {
	copy(f.mustMem(dst, bytes), unsafe.Slice((*byte)(src), bytes))
	return nil
}

func (f *fakeGPU) download(dst unsafe.Pointer, src devPtr, bytes uint64) error {
	copy(unsafe.Slice((*byte)(dst), bytes), f.mustMem(src, bytes))
	return nil
}

func (f *fakeGPU) copy(dst, src devPtr, bytes uint64) error {
	copy(f.mustMem(dst, bytes), f.mustMem(src, bytes))
	return nil
}

func (f *fakeGPU) memset8(dst devPtr, v uint8, n uint64) error {
	b := f.mustMem(dst, n)
	for i := range b {
		b[i] = v
	}
	return nil
}

func (f *fakeGPU) memset32(dst devPtr, v uint32, n uint64) error {
	b := f.mustMem(dst, 4*n)
	for i := uint64(0); i < n; i++ {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return nil
}

// launch checks the launch shape and that every pointer argument lies in
// an allocation.
func (f *fakeGPU) launch(kernel string, grid, block dim3, args []any) error {
	f.t.Helper()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.launches = append(f.launches, fakeLaunch{kernel, grid, block, args})
	for i, a := range args {
		if p, ok := a.(devPtr); ok && p != 0 {
			if _, err := f.mem(p, 1); err != nil {
				f.t.Errorf("%s argument %d: %v", kernel, i, err)
			}
		}
	}
	threads := block.x * block.y * block.z
	if grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > maxGridY || grid.z > maxGridY ||
		threads == 0 || threads > 1024 || threads%32 != 0 {
		f.t.Errorf("%s launched with grid %v, block %v", kernel, grid, block)
	}
	return nil
}

// gemm checks that each matrix of g lies inside an allocation.
func (f *fakeGPU) gemm(g gemmArgs) error {
	f.t.Helper()
	f.gemms = append(f.gemms, g)
	batch := max(1, g.batch)
	check := func(name string, p dptr[float32], rows, cols, ld, stride int) {
		if ld < max(1, cols) {
			f.t.Errorf("GEMM %v: %s has leading dimension %d < %d columns", g, name, ld, cols)
		}
		if rows == 0 || cols == 0 {
			return
		}
		if _, err := f.mem(devPtr(p), uint64(4*((batch-1)*stride+(rows-1)*ld+cols))); err != nil {
			f.t.Errorf("GEMM %v: %s: %v", g, name, err)
		}
	}
	ar, ac := g.m, g.k
	if g.transA {
		ar, ac = ac, ar
	}
	br, bc := g.k, g.n
	if g.transB {
		br, bc = bc, br
	}
	check("a", g.a, ar, ac, g.lda, g.strideA)
	check("b", g.b, br, bc, g.ldb, g.strideB)
	check("c", g.c, g.m, g.n, g.ldc, g.strideC)
	return nil
}

func (f *fakeGPU) setTF32(on bool) error { f.tf32 = on; return nil }

func (f *fakeGPU) close() error { return nil }

func (f *fakeGPU) convLibrary() (convLib, error) {
	if f.dnn == nil {
		return nil, fmt.Errorf("the fake GPU has no cuDNN")
	}
	return f.dnn, nil
}

// TestKernelConstantsMatch checks the Go mirrors of the kernels' #defines.
func TestKernelConstantsMatch(t *testing.T) {
	src, err := kernelSource()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		goV  int
	}{
		{"QM_BLOCK", blockSize},
		{"QM_TILE_X", tileX},
		{"QM_TILE_Y", tileY},
		{"QM_DOT_MAX", dotMax},
		{"QM_MAX_CHANNELS", maxChannels},
		{"QM_STATUS_GATHER_INDEX", statusGatherIndex},
		{"QM_STATUS_IMAGE_INDEX", statusImageIndex},
		{"QM_STATUS_LABEL", statusLabel},
		{"QM_ACT_RELU", actReLU},
		{"QM_ACT_RELU6", actReLU6},
		{"QM_ACT_RELU", int(engine.ReLU)},
		{"QM_ACT_RELU6", int(engine.ReLU6)},
	} {
		if v, ok := src.Defines[c.name]; !ok || v != c.goV {
			t.Errorf("%s is %d (defined %v) in kernels/, %d in Go", c.name, v, ok, c.goV)
		}
	}
}

// TestFatbinHasEveryKernel checks that the embedded fatbin is not older
// than kernels/*.cu: every kernel they define is in it.
func TestFatbinHasEveryKernel(t *testing.T) {
	src, err := kernelSource()
	if err != nil {
		t.Fatal(err)
	}
	var names, missing []string
	for _, f := range src.Files {
		for _, k := range f.Kernels {
			names = append(names, k.Name)
			if !bytes.Contains(fatbin, []byte(k.Name+"\x00")) {
				missing = append(missing, k.Name)
			}
		}
	}
	if len(missing) == len(names) {
		t.Skip("no kernel name in kernels.fatbin: compressed, cannot check")
	}
	if len(missing) > 0 {
		t.Errorf("kernels.fatbin lacks %v: rebuild it (cmake --build build)", missing)
	}
}
