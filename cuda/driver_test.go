//go:build cuda

package cuda

import (
	"fmt"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/device"
)

func TestLoadDriverErrors(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/nonexistent/libcuda.so.1", []string{"cannot load the CUDA driver library (/nonexistent/libcuda.so.1)",
			"is the NVIDIA driver installed?"}},
		// The C library loads but has none of the driver's entry points.
		{"libc.so.6", []string{"libc.so.6 lacks cuInit"}},
	}
	for _, tc := range tests {
		d, err := loadDriver(tc.path)
		if err == nil {
			t.Errorf("loadDriver(%q) = %v, want an error", tc.path, d)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("loadDriver(%q): error %q does not say %q", tc.path, err, w)
			}
		}
	}
}

// TestDriverErrors needs the driver library (not a GPU): it checks how
// results become errors, with the driver's own names for them.
func TestDriverErrors(t *testing.T) {
	d, err := loadDriver(driverLibrary)
	if err != nil {
		t.Skipf("%s not available: %v", driverLibrary, err)
	}
	tests := []struct {
		code int
		want string
	}{
		{0, ""},
		{2, "cuMemAlloc_v2(268435456 bytes): CUDA_ERROR_OUT_OF_MEMORY: out of memory"},
		{failedSetCurrent | 201, "cuCtxSetCurrent (before cuMemAlloc_v2(268435456 bytes)): CUDA_ERROR_INVALID_CONTEXT: invalid device context"},
		{failedSync | 700, "cuStreamSynchronize (after cuMemAlloc_v2(268435456 bytes)): CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered"},
		{123456, "cuMemAlloc_v2(268435456 bytes): CUDA_ERROR_123456: unknown error"},
	}
	for _, tc := range tests {
		err := d.checkCode(tc.code, "cuMemAlloc_v2(%d bytes)", 268435456)
		if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || (err != nil && got != tc.want) {
			t.Errorf("checkCode(%d) = %v, want %q", tc.code, err, tc.want)
		}
	}
	if err := d.checkCode(2, "cuMemAlloc_v2"); !isOutOfMemory(fmt.Errorf("wrapped: %w", err)) {
		t.Errorf("isOutOfMemory(%v) is false", err)
	}
}

// TestOpenWithoutGPU checks that opening a device that is not there fails
// with an error, not a crash, whatever this machine has.
func TestOpenWithoutGPU(t *testing.T) {
	b, err := Open(1<<20, device.DefaultOptions())
	if err == nil {
		b.Close()
		t.Fatal("Open(1<<20) succeeded")
	}
	if !strings.HasPrefix(err.Error(), "cuda:1048576: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line naming the device", err)
	}
	t.Log(err)
}
