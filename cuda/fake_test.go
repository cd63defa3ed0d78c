//go:build cuda

package cuda

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// The fake executor runs a Backend without a GPU: memory is host memory
// (so copies and fills are real), kernels are not run but every launch is
// checked against the kernel's signature, parsed from kernels/*.cu, and
// every GEMM's operands against the allocations they must fit in.

// paramKind is the Go type a kernel parameter takes.
type paramKind string

// kernelSource is what kernels/*.cu declare: each kernel's parameter kinds
// and every #define.
type kernelSource struct {
	params  map[string][]paramKind
	defines map[string]int
}

var (
	kernelRE = regexp.MustCompile(`(?s)extern "C" __global__ void (\w+)\s*\(([^)]*)\)`)
	defineRE = regexp.MustCompile(`(?m)^#define (QM_\w+) (\d+)\s*$`)
	// structSizes are the byte sizes of the struct parameters.
	structSizes = map[string]int{"qm_dot_table": 24 * dotMax, "qm_norm": 8 * maxChannels}
)

var parsedKernels = sync.OnceValues(func() (*kernelSource, error) {
	// go test runs in cuda/; a prebuilt test binary may run from the
	// repository root.
	var files []string
	for _, dir := range []string{"../kernels", "kernels"} {
		if files, _ = filepath.Glob(filepath.Join(dir, "*.cu*")); len(files) > 0 {
			break
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no kernel sources in ../kernels or kernels: run the tests from cuda/ or the repository root")
	}
	src := &kernelSource{params: map[string][]paramKind{}, defines: map[string]int{}}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range defineRE.FindAllStringSubmatch(string(text), -1) {
			v, _ := strconv.Atoi(m[2])
			src.defines[m[1]] = v
		}
		for _, m := range kernelRE.FindAllStringSubmatch(string(text), -1) {
			var kinds []paramKind
			for _, p := range strings.Split(m[2], ",") {
				fields := strings.Fields(p)
				if len(fields) < 2 {
					return nil, fmt.Errorf("%s: kernel %s: cannot parse parameter %q", f, m[1], p)
				}
				kinds = append(kinds, kindOf(strings.Join(fields[:len(fields)-1], " ")))
			}
			src.params[m[1]] = kinds
		}
	}
	return src, nil
})

// kindOf maps a C parameter type to the Go argument type that matches it.
func kindOf(ctype string) paramKind {
	switch {
	case strings.HasSuffix(ctype, "*"):
		return "devPtr"
	case ctype == "long long":
		return "int64"
	case ctype == "int":
		return "int32"
	case ctype == "float":
		return "float32"
	case ctype == "double":
		return "float64"
	}
	return paramKind("struct " + ctype)
}

// argKind is the kind of a Go kernel argument.
func argKind(a any) paramKind {
	switch v := a.(type) {
	case devPtr:
		return "devPtr"
	case int64:
		return "int64"
	case int32:
		return "int32"
	case float32:
		return "float32"
	case float64:
		return "float64"
	case rawArg:
		for name, size := range structSizes {
			if size == len(v.data) {
				return paramKind("struct " + name)
			}
		}
		return paramKind(fmt.Sprintf("struct of %d bytes", len(v.data)))
	}
	return paramKind(fmt.Sprintf("%T", a))
}

// fakeLaunch records a launch.
type fakeLaunch struct {
	kernel      string
	grid, block dim3
	args        []any
}

// fakeGPU is an executor on host memory.
type fakeGPU struct {
	t        *testing.T
	src      *kernelSource
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
	t.Helper()
	src, err := parsedKernels()
	if err != nil {
		t.Fatal(err)
	}
	return &fakeGPU{t: t, src: src, next: 1 << 32, blocks: map[devPtr][]byte{}}
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

// launch checks the launch shape and every argument against the kernel's
// parameters.
func (f *fakeGPU) launch(kernel string, grid, block dim3, args []any) error {
	f.t.Helper()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.launches = append(f.launches, fakeLaunch{kernel, grid, block, args})
	params, ok := f.src.params[kernel]
	if !ok {
		f.t.Errorf("launch of %s, which kernels/*.cu do not define", kernel)
		return nil
	}
	if len(args) != len(params) {
		f.t.Errorf("%s takes %d arguments, launched with %d", kernel, len(params), len(args))
		return nil
	}
	for i, a := range args {
		if k := argKind(a); k != params[i] {
			f.t.Errorf("%s argument %d is %s, the parameter %s", kernel, i, k, params[i])
		}
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
	check := func(name string, p devPtr, rows, cols, ld, stride int) {
		if ld < max(1, cols) {
			f.t.Errorf("GEMM %v: %s has leading dimension %d < %d columns", g, name, ld, cols)
		}
		if rows == 0 || cols == 0 {
			return
		}
		if _, err := f.mem(p, uint64(4*((batch-1)*stride+(rows-1)*ld+cols))); err != nil {
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
	src, err := parsedKernels()
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
		if v, ok := src.defines[c.name]; !ok || v != c.goV {
			t.Errorf("%s is %d (defined %v) in kernels/, %d in Go", c.name, v, ok, c.goV)
		}
	}
	if len(src.params) < 30 {
		t.Errorf("parsed only %d kernels", len(src.params))
	}
}

// TestFatbinHasEveryKernel checks that the embedded fatbin is not older
// than kernels/*.cu: every kernel they define is in it.
func TestFatbinHasEveryKernel(t *testing.T) {
	src, err := parsedKernels()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for name := range src.params {
		if !bytes.Contains(fatbin, []byte(name+"\x00")) {
			missing = append(missing, name)
		}
	}
	if len(missing) == len(src.params) {
		t.Skip("no kernel name in kernels.fatbin: compressed, cannot check")
	}
	if len(missing) > 0 {
		t.Errorf("kernels.fatbin lacks %v: rebuild it (cmake --build build)", missing)
	}
}
