// Package device chooses the compute backend from a --device string:
// "cpu", "cuda", "cuda:N" or "auto" (a GPU when one is usable, else the CPU).
package device

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

// GPU describes one GPU for `qmulgpu devices`.
type GPU struct {
	Index             int    `json:"index"`
	Name              string `json:"name"`
	MemoryTotal       uint64 `json:"memory_total_bytes"`
	MemoryFree        uint64 `json:"memory_free_bytes"`
	ComputeCapability string `json:"compute_capability"`
	Driver            string `json:"driver_version"`
	CUDA              string `json:"cuda_version"`
}

// Provider is a GPU backend, registered by the cuda build.
type Provider interface {
	// Discover lists usable GPUs; an error says why none can be used.
	Discover() ([]GPU, error)
	// Open starts a backend on GPU index.
	Open(index int) (engine.Backend, error)
}

var gpu Provider

// Register installs the GPU provider (called from the cuda package's init).
func Register(p Provider) { gpu = p }

// GPUs lists usable GPUs; the error says why there are none (no CUDA
// support compiled in, no driver, no device).
func GPUs() ([]GPU, error) {
	if gpu == nil {
		return nil, fmt.Errorf("this binary was built without CUDA support (build tag cuda)")
	}
	return gpu.Discover()
}

// maxThreadsPerCPU bounds --threads: more CPU threads than a few per core
// only add scheduling overhead, and a mistyped count would start that many
// goroutines.
const maxThreadsPerCPU = 4

// CheckThreads reports a CPU thread count (0: all cores) that is negative
// or more than maxThreadsPerCPU per core of this machine.
func CheckThreads(threads int) error {
	if threads < 0 {
		return fmt.Errorf("--threads %d: must be 0 (all cores) or positive", threads)
	}
	if limit := maxThreadsPerCPU * runtime.NumCPU(); threads > limit {
		return fmt.Errorf("--threads %d: this machine has %d CPUs; use at most %d (0: all cores)", threads, runtime.NumCPU(), limit)
	}
	return nil
}

// Open returns the backend named by spec. For "auto" it picks GPU 0 when
// one is usable and otherwise the CPU, reporting why through note (one line)
// when it falls back. threads bounds the CPU backend (0: all cores).
func Open(spec string, threads int, note func(string)) (engine.Backend, error) {
	if err := CheckThreads(threads); err != nil {
		return nil, err
	}
	switch {
	case spec == "" || spec == "auto":
		if gpu != nil {
			gpus, err := gpu.Discover()
			if err == nil && len(gpus) > 0 {
				b, err := gpu.Open(0)
				if err == nil {
					return b, nil
				}
				note(fmt.Sprintf("GPU unusable (%v); running on the CPU", err))
			} else if err != nil {
				note(fmt.Sprintf("no usable GPU (%v); running on the CPU", err))
			}
		}
		return cpu.New(threads), nil
	case spec == "cpu":
		return cpu.New(threads), nil
	case spec == "cuda" || strings.HasPrefix(spec, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(spec, "cuda:"); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--device %q: want cuda:N with N a GPU index", spec)
			}
			idx = n
		}
		gpus, err := GPUs()
		if err != nil {
			return nil, fmt.Errorf("--device %s: %w", spec, err)
		}
		if idx >= len(gpus) {
			return nil, fmt.Errorf("--device %s: only %d GPU(s) present", spec, len(gpus))
		}
		return gpu.Open(idx)
	}
	return nil, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", spec)
}

// ConvModes are the convolution paths --conv names: auto (on a GPU, cuDNN
// when it loads and works, else im2col + cuBLAS SGEMM; on the CPU,
// Winograd for the 3×3 stride-1 convolutions it is faster for, else im2col
// + GEMM), cudnn (GPUs only) and im2col.
var ConvModes = []string{"auto", "cudnn", "im2col"}

// CheckConv reports an unknown --conv value.
func CheckConv(mode string) error {
	for _, m := range ConvModes {
		if mode == m {
			return nil
		}
	}
	return fmt.Errorf("--conv %q: want %s", mode, strings.Join(ConvModes, ", "))
}

// SetConv applies --conv to b and returns the line that says which path
// its convolutions take ("" for a backend without a choice). --conv cudnn
// on such a backend is an error.
func SetConv(b engine.Backend, mode string) (string, error) {
	if err := CheckConv(mode); err != nil {
		return "", err
	}
	c, ok := b.(engine.ConvPathChooser)
	if !ok {
		if mode == "cudnn" {
			return "", fmt.Errorf("--conv cudnn: the %s backend has no cuDNN (use --device cuda)", b.Name())
		}
		return "", nil
	}
	if err := c.SetConv(mode); err != nil {
		return "", fmt.Errorf("--conv %s: %w", mode, err)
	}
	return c.ConvPath(), nil
}

// convReporter is a Provider that can say, without opening a device, which
// path --conv auto takes.
type convReporter interface{ ConvStatus() string }

// ConvStatus says in one line which path GPU convolutions take under
// --conv auto, and why, for `qmulgpu devices`.
func ConvStatus() string {
	r, ok := gpu.(convReporter)
	if !ok {
		return "none (this binary was built without CUDA support)"
	}
	return r.ConvStatus()
}
