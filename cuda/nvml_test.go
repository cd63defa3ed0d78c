//go:build cuda

package cuda

import (
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/device"
)

func TestDiscoverWithoutNVML(t *testing.T) {
	_, err := provider{nvmlPath: "/nonexistent/libnvidia-ml.so.1"}.Discover()
	want := "no NVIDIA driver: cannot load /nonexistent/libnvidia-ml.so.1"
	if err == nil || err.Error() != want {
		t.Errorf("Discover with a missing NVML = %v, want %q", err, want)
	}
}

// TestDiscover runs discovery on whatever this machine has: GPUs, or one
// line saying why there are none.
func TestDiscover(t *testing.T) {
	gpus, err := device.GPUs() // through the provider registered by init
	if err != nil {
		if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "without CUDA support") {
			t.Errorf("GPUs() error %q: want one line from the cuda provider", err)
		}
		t.Logf("no GPU: %v", err)
		return
	}
	for _, g := range gpus {
		t.Logf("%+v", g)
		if g.Name == "" || g.MemoryTotal == 0 || !strings.Contains(g.ComputeCapability, ".") || !strings.Contains(g.CUDA, ".") {
			t.Errorf("incomplete description %+v", g)
		}
	}
}

func TestCUDAVersionString(t *testing.T) {
	tests := []struct {
		v    int
		want string
	}{
		{13000, "13.0"},
		{12040, "12.4"},
		{11080, "11.8"},
		{12090, "12.9"},
	}
	for _, tc := range tests {
		if got := cudaVersionString(tc.v); got != tc.want {
			t.Errorf("cudaVersionString(%d) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
