//go:build cuda

package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

func TestDescribe(t *testing.T) {
	b, _ := newFakeBackend(t)
	if b.Name() != "cuda:0" || b.Describe() != "Fake GPU (cuda:0, compute 9.0, 80.0 GiB), convolutions on im2col + SGEMM" {
		t.Errorf("Name %q, Describe %q", b.Name(), b.Describe())
	}
	if b.ConcurrentSafe() || b.Supports(engine.Float64) || !b.Supports(engine.Uint8) {
		t.Error("wrong ConcurrentSafe or Supports")
	}
}

// TestOutOfMemoryIsReportedByErr checks the error model on a small fake
// device: the failed Alloc records the error, later ops do nothing, Err
// returns it once, and then the backend works again.
func TestOutOfMemoryIsReportedByErr(t *testing.T) {
	b, f := newFakeBackend(t)
	f.capacity = 1 << 20
	x := b.Zeros(engine.Float32, 1000)
	big := b.Alloc(engine.Float32, 1<<20) // 4 MiB
	before := len(f.launches)
	b.Scale(x, 2)
	if len(f.launches) != before {
		t.Error("an op ran after an allocation failed")
	}
	err := b.Err()
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || !strings.Contains(err.Error(), "allocating 4.0 MiB (4194304 bytes)") ||
		!strings.Contains(err.Error(), "try a smaller --batch") || !strings.HasPrefix(err.Error(), "cuda: Alloc: F32[1048576]: ") {
		t.Errorf("Err() = %v, want an out-of-memory error naming the size and suggesting --batch", err)
	}
	if err := b.Err(); err != nil {
		t.Errorf("second Err() = %v, want nil", err)
	}
	b.Scale(x, 2)
	if len(f.launches) != before+1 {
		t.Error("ops stay disabled after Err")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "allocation failed") {
				t.Errorf("using the failed tensor: panic %v", r)
			}
		}()
		b.Scale(big, 2)
	}()
	b.Free(big)
	b.Free(x)
}

func TestLaunchErrorIsReportedByErr(t *testing.T) {
	b, f := newFakeBackend(t)
	x := b.Zeros(engine.Float32, 10)
	f.failNext = &Error{Call: "cuLaunchKernel(qm_scale_f32, grid 1×1×1, block 256×1×1)", Code: 719,
		Name: "CUDA_ERROR_LAUNCH_FAILED", Text: "unspecified launch failure"}
	b.Scale(x, 2)
	b.Axpy(1, x, x)
	want := "cuda: Scale: cuLaunchKernel(qm_scale_f32, grid 1×1×1, block 256×1×1): CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure"
	if err := b.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
	if len(f.launches) != 0 {
		t.Errorf("%d launches after the failure, want none", len(f.launches))
	}
}

// TestStatusIsReportedByErr checks that codes kernels leave in the status
// word become errors, and that Err clears the word.
func TestStatusIsReportedByErr(t *testing.T) {
	tests := []struct {
		code int32
		want string
	}{
		{statusGatherIndex, "cuda: Gather: a row index is outside the source tensor"},
		{statusImageIndex, "cuda: GatherImages: an image index is outside the data set"},
		{statusLabel, "cuda: SoftmaxCrossEntropy: a label is outside [0, classes)"},
		{42, "cuda: a kernel reported unknown status 42"},
	}
	b, f := newFakeBackend(t)
	for _, tc := range tests {
		if err := f.memset32(b.status.ptr, uint32(tc.code), 1); err != nil {
			t.Fatal(err)
		}
		if err := b.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("status %d: Err() = %v, want %q", tc.code, err, tc.want)
		}
		if err := b.Err(); err != nil {
			t.Errorf("status %d not cleared: %v", tc.code, err)
		}
	}
}

func TestFree(t *testing.T) {
	b, _ := newFakeBackend(t)
	base := b.mem.live
	x := b.Alloc(engine.Float32, 100, 3)
	mem := x.Mem
	view := x.Slice(10, 20)
	b.Free(view)
	b.Free(x) // the same allocation: returned once
	b.Free(x)
	b.Free(nil)
	if b.mem.live != base {
		t.Errorf("%d bytes live after freeing, want %d", b.mem.live, base)
	}
	y := b.Alloc(engine.Float32, 300)
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "after Free") {
				t.Errorf("use after Free: panic %v", r)
			}
		}()
		b.Scale(&engine.Tensor{Shape: []int{300}, DType: engine.Float32, Mem: mem}, 1)
	}()
	b.Free(y)
}

func TestHostTransfersCheckTypes(t *testing.T) {
	b, _ := newFakeBackend(t)
	x := b.Alloc(engine.Float32, 4)
	i := b.Alloc(engine.Int32, 4)
	defer b.Free(x)
	defer b.Free(i)
	tests := []struct {
		name string
		call func()
		ok   bool
	}{
		{"float32", func() { b.Upload(x, []float32{1, 2, 3, 4}) }, true},
		{"longer slice", func() { b.Download(x, make([]float32, 9)) }, true},
		{"int32 into F32", func() { b.Upload(x, []int32{1, 2, 3, 4}) }, false},
		{"float64", func() { b.Upload(x, []float64{1, 2, 3, 4}) }, false},
		{"short slice", func() { b.Download(i, make([]int32, 3)) }, false},
		{"not a slice", func() { b.Upload(i, 3) }, false},
	}
	for _, tc := range tests {
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			tc.call()
			return false
		}()
		if panicked == tc.ok {
			t.Errorf("%s: panicked %v", tc.name, panicked)
		}
	}
	got := make([]float32, 4)
	b.Download(x, got)
	if got[3] != 4 {
		t.Errorf("round trip gave %v", got)
	}
}

func TestGPUOutOfMemory(t *testing.T) {
	b := gpuBackend(t)
	huge := b.Alloc(engine.Float32, 1<<40) // 4 TiB
	var oom *OutOfMemoryError
	if err := b.Err(); !errors.As(err, &oom) || !strings.Contains(err.Error(), "--batch") {
		t.Fatalf("Err() after a 4 TiB Alloc = %v, want an OutOfMemoryError", err)
	}
	b.Free(huge)
	x := b.Zeros(engine.Float32, 3)
	b.Scale(x, 2)
	b.Free(x)
	if err := b.Err(); err != nil {
		t.Fatalf("the backend does not recover: %v", err)
	}
}

func TestGPUInvalidInputIsReported(t *testing.T) {
	b := gpuBackend(t)
	tests := []struct {
		name string
		run  func(e *env)
		want string
	}{
		{"gather", func(e *env) {
			e.b.Gather(e.poison(engine.Int32, 2), e.i32([]int32{1, 2, 3}, 3), e.i32([]int32{0, 3}, 2))
		}, "row index"},
		{"label", func(e *env) {
			e.b.SoftmaxCrossEntropy(engine.LossArgs{Logits: e.randn(2, 3), Labels: e.i32([]int32{0, 3}, 2),
				Loss: e.poison(engine.Float32, 2)})
		}, "label"},
		{"image", func(e *env) {
			e.b.GatherImages(engine.GatherArgs{Src: e.u8(make([]uint8, 2*4*4), 2, 4, 4, 1), Index: e.i32([]int32{-1}, 1),
				Mean: []float32{0}, Std: []float32{1}, Out: e.poison(engine.Float32, 1, 4, 4, 1)})
		}, "image index"},
	}
	for i, tc := range tests {
		e := newEnv(b, uint64(i))
		tc.run(e)
		for _, t := range e.tensors {
			b.Free(t)
		}
		if err := b.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Err() = %v, want an error about the %s", tc.name, err, tc.want)
		}
	}
}
