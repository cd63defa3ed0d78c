// Package device chooses and opens the compute backend: from a --device
// string ("cpu", "cuda", "cuda:N" or "auto": a GPU when one is usable,
// else the CPU) and Options, and finds the workers of a sweep.
package device

import (
	"errors"
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

// Library is a shared library a GPU backend loaded at run time.
type Library struct {
	// Name says what it is: "CUDA driver", "NVML", "cuBLAS", "cuBLASLt",
	// "cuDNN", "cuDNN sub-library".
	Name string `json:"name"`
	// Path is the file loaded, in full.
	Path string `json:"path"`
	// FoundIn says where the search found it, e.g. "loader path",
	// "$CUDA_HOME", "pip wheel nvidia/cu13 in /venv/lib/python3.12/site-packages
	// ($VIRTUAL_ENV)", "beside libcudnn.so.9".
	FoundIn string `json:"found_in"`
	// Version is the library's own version, when it reports one.
	Version string `json:"version,omitempty"`
	// Note says why this one was chosen over others that were found.
	Note string `json:"note,omitempty"`
}

// Provider is a GPU backend, registered by the cuda build.
type Provider interface {
	// Discover lists the GPUs; an error says why none can be used.
	Discover() ([]GPU, error)
	// Open starts a backend on GPU index with the options' GPU settings.
	Open(index int, opts Options) (engine.Backend, error)
	// Libraries lists the shared libraries loaded so far, in the order
	// they were loaded.
	Libraries() []Library
	// ConvStatus says, without opening a device, which path GPU
	// convolutions take under --conv auto, and why.
	ConvStatus() string
}

var gpu Provider

// Register installs the GPU provider (called from the cuda package's init).
func Register(p Provider) { gpu = p }

// errNoCUDA is the reason for no GPU in a build without the cuda tag.
var errNoCUDA = errors.New("this binary was built without CUDA support (build tag cuda)")

// GPUs lists usable GPUs; the error says why there are none (no CUDA
// support compiled in, no driver, no device).
func GPUs() ([]GPU, error) {
	if gpu == nil {
		return nil, errNoCUDA
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

// Open returns the backend named by spec, set up with opts. For "auto" it
// picks GPU 0 when one opens and otherwise the CPU, saying why through
// opts.Note (one line) when it falls back. A GPU backend's convolution
// path is said through opts.Note too.
func Open(spec string, opts Options) (engine.Backend, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	var b engine.Backend
	var err error
	switch {
	case spec == "" || spec == "auto":
		b, err = openAuto(opts)
	case spec == "cpu":
		b, err = openCPU(opts)
	case spec == "cuda" || strings.HasPrefix(spec, "cuda:"):
		b, err = openCUDA(spec, opts)
	default:
		return nil, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", spec)
	}
	if err != nil {
		return nil, err
	}
	// The CPU's convolution algorithms are part of its Describe, which
	// every run records; its ConvPath is empty, so that a failing
	// command's stderr stays one line.
	if c, ok := b.(engine.ConvPathChooser); ok && c.ConvPath() != "" {
		opts.note("convolutions: " + c.ConvPath())
	}
	return b, nil
}

// openAuto opens GPU 0 when one is there and opens, else the CPU.
func openAuto(opts Options) (engine.Backend, error) {
	if gpu != nil {
		gpus, err := gpu.Discover()
		switch {
		case err != nil:
			opts.note(fmt.Sprintf("no usable GPU (%v); running on the CPU", err))
		case len(gpus) > 0:
			b, err := gpu.Open(0, opts)
			if err == nil {
				return b, nil
			}
			opts.note(fmt.Sprintf("GPU unusable (%v); running on the CPU", err))
		}
	}
	return openCPU(opts)
}

// openCPU opens the CPU backend with the options' threads and convolution
// path.
func openCPU(opts Options) (engine.Backend, error) {
	b := cpu.New(opts.Threads)
	if err := b.SetConv(opts.Conv); err != nil {
		return nil, fmt.Errorf("--conv %s: %w", opts.Conv, err)
	}
	return b, nil
}

// openCUDA opens the GPU "cuda" or "cuda:N" names.
func openCUDA(spec string, opts Options) (engine.Backend, error) {
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
	return gpu.Open(idx, opts)
}

// Report is what `qmulgpu devices` says about GPUs.
type Report struct {
	GPUs []GPU
	// Error says why no GPU is usable ("" when GPU 0 opened).
	Error string
	// Auto is the backend --device auto picks: "cuda:0" or "cpu".
	Auto string
	// Conv is the path GPU convolutions take under --conv auto, and why.
	Conv string
	// Libraries are the shared libraries loaded on the way.
	Libraries []Library
}

// Inspect finds the GPUs and, when there is one, opens GPU 0 with the
// default options and closes it again, so that --device auto is named
// only once the driver, the kernels, cuBLAS (a handle created) and cuDNN
// have loaded on it. The report lists every library loaded and where it
// was found.
func Inspect() Report {
	r := Report{Auto: "cpu"}
	if gpu == nil {
		r.Error, r.Conv = errNoCUDA.Error(), "none ("+errNoCUDA.Error()+")"
		return r
	}
	gpus, err := gpu.Discover()
	r.GPUs = gpus
	switch {
	case err != nil:
		r.Error, r.Conv = err.Error(), gpu.ConvStatus()
	default:
		b, err := gpu.Open(0, DefaultOptions())
		if err != nil {
			r.Error, r.Conv = "cuda:0 does not open: "+err.Error(), gpu.ConvStatus()
			break
		}
		r.Auto = "cuda:0"
		if c, ok := b.(engine.ConvPathChooser); ok {
			r.Conv = c.ConvPath()
		}
		if c, ok := b.(engine.Closer); ok {
			if err := c.Close(); err != nil {
				r.Error = "closing cuda:0: " + err.Error()
			}
		}
	}
	r.Libraries = gpu.Libraries()
	return r
}
