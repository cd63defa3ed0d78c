//go:build cuda

package cuda

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// TestPackArgs checks that every argument lands in the arena, aligned to
// its size, with the parameter array pointing at it.
func TestPackArgs(t *testing.T) {
	raw := rawArg{data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, align: 4}
	tests := []struct {
		name string
		args []any
		want [][]byte // each argument's bytes
	}{
		{"none", nil, nil},
		{"pointer", []any{devPtr(0x7f0012345678)}, [][]byte{le64(0x7f0012345678)}},
		{"mixed", []any{int32(-3), devPtr(42), float32(1.5), int64(-1 << 40), float64(math.Pi), int32(7)},
			[][]byte{le32(uint32(0xfffffffd)), le64(42), le32(math.Float32bits(1.5)), le64(uint64(0xffffff0000000000)),
				le64(math.Float64bits(math.Pi)), le32(7)}},
		{"struct", []any{int32(1), raw, devPtr(9)}, [][]byte{le32(1), raw.data, le64(9)}},
		{"big struct", []any{rawArg{make([]byte, 3840), 8}, int32(5), devPtr(1)},
			[][]byte{make([]byte, 3840), le32(5), le64(1)}},
	}
	a := newArgArena()
	defer a.free()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := a.pack(tc.args)
			if params != a.mem {
				t.Fatalf("parameter array at %p, want the arena's start %p", params, a.mem)
			}
			ptrs := unsafe.Slice((*uintptr)(params), len(tc.args))
			base := uintptr(unsafe.Pointer(&a.vals[0]))
			end := 0
			for i, want := range tc.want {
				off := int(ptrs[i] - base)
				if off < end || off+len(want) > len(a.vals) {
					t.Fatalf("argument %d at offset %d overlaps the previous one (ending at %d) or the arena's end", i, off, end)
				}
				align := len(want)
				if r, ok := tc.args[i].(rawArg); ok {
					align = r.align
				}
				if off%align != 0 {
					t.Errorf("argument %d at offset %d, not aligned to %d", i, off, align)
				}
				if got := a.vals[off : off+len(want)]; string(got) != string(want) {
					t.Errorf("argument %d is % x, want % x", i, got, want)
				}
				end = off + len(want)
			}
		})
	}
}

func TestPackArgsRejects(t *testing.T) {
	tests := []struct {
		name string
		args []any
	}{
		{"int", []any{int(3)}},
		{"uint32", []any{uint32(3)}},
		{"bool", []any{true}},
		{"too many", make([]any, maxKernelArgs+1)},
		{"too big", []any{rawArg{make([]byte, maxArgBytes), 8}, int32(1)}},
	}
	a := newArgArena()
	defer a.free()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("pack(%v) did not panic", tc.args)
				}
			}()
			a.pack(tc.args)
		})
	}
}

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func le64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// TestStructArg checks that a generated struct twin is passed as the
// bytes C expects: each member at its C offset, aligned as C aligns it.
func TestStructArg(t *testing.T) {
	var norm qmNorm
	norm.mean[0], norm.std[maxChannels-1] = 1.5, -2
	wantNorm := make([]byte, 8*maxChannels)
	copy(wantNorm, le32(math.Float32bits(1.5)))
	copy(wantNorm[8*maxChannels-4:], le32(math.Float32bits(-2)))

	var tab qmDotTable
	tab.a[0], tab.b[1], tab.len[dotMax-1] = 7, 8, -1
	wantTab := make([]byte, 24*dotMax)
	copy(wantTab, le64(7))
	copy(wantTab[8*dotMax+8:], le64(8))
	copy(wantTab[24*dotMax-8:], le64(^uint64(0)))

	for _, tc := range []struct {
		name  string
		got   rawArg
		want  []byte
		align int
	}{
		{"qm_norm", structArg(&norm), wantNorm, 4},
		{"qm_dot_table", structArg(&tab), wantTab, 8},
	} {
		if tc.got.align != tc.align || !bytes.Equal(tc.got.data, tc.want) {
			t.Errorf("%s: %d bytes aligned to %d, want %d aligned to %d, or the bytes differ",
				tc.name, len(tc.got.data), tc.got.align, len(tc.want), tc.align)
		}
	}
}

// nopGPU is an executor on which nothing happens: BenchmarkLaunchPath
// measures the Go side of queueing ops alone.
type nopGPU struct{ *fakeGPU }

func (nopGPU) launch(string, dim3, dim3, []any) error        { return nil }
func (nopGPU) gemm(gemmArgs) error                           { return nil }
func (nopGPU) memset32(devPtr, uint32, uint64) error         { return nil }
func (nopGPU) memset8(devPtr, uint8, uint64) error           { return nil }
func (nopGPU) download(unsafe.Pointer, devPtr, uint64) error { return nil }
func (nopGPU) upload(devPtr, unsafe.Pointer, uint64) error   { return nil }
func (nopGPU) copy(devPtr, devPtr, uint64) error             { return nil }

// BenchmarkLaunchPath queues a training-like sequence of 7 launches
// (BatchNorm's 3, an activation, an SGD update, a two-tensor SumSquares
// with its struct parameter) on an executor that does nothing.
func BenchmarkLaunchPath(bm *testing.B) {
	f := &fakeGPU{next: 1 << 32, blocks: map[devPtr][]byte{}}
	b, err := newBackend(nopGPU{f}, 0, deviceInfo{name: "nop", major: 9, sms: 4, totalMem: 80 << 30}, device.DefaultOptions())
	if err != nil {
		bm.Fatal(err)
	}
	const c = 16
	act := func() *engine.Tensor { return b.Zeros(engine.Float32, 8, 4, 4, c) }
	per := func() *engine.Tensor { return b.Zeros(engine.Float32, c) }
	x, y, g, buf, out := act(), act(), act(), act(), b.Zeros(engine.Float32, 2)
	bn := engine.BatchNormArgs{X: x, Y: y, Gamma: per(), Beta: per(), Mean: per(), InvStd: per(), RunMean: per(),
		RunVar: per(), Momentum: 0.1, Eps: 1e-5, Train: true, Act: engine.ReLU}
	bm.ReportAllocs()
	for bm.Loop() {
		b.BatchNorm(bn)
		b.Activate(engine.ReLU, x, nil, y)
		b.SGD(engine.SGDArgs{Param: x, Grad: g, Buf: buf, LR: 0.1, Momentum: 0.9})
		b.SumSquares([]*engine.Tensor{x, y}, out)
	}
}
