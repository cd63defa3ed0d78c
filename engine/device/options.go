package device

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Convolution paths (--conv, QMUL_CONV, a sweep file's conv key).
const (
	// ConvAuto: on a GPU, cuDNN when it loads and works, else im2col +
	// cuBLAS SGEMM; on the CPU, Winograd F(4×4, 3×3) for 3×3 stride-1
	// float32 convolutions of 16 or more channels, else im2col + GEMM.
	ConvAuto = "auto"
	// ConvCudnn: every convolution cuDNN accepts through cuDNN; an error
	// when cuDNN is unusable, and on the CPU.
	ConvCudnn = "cudnn"
	// ConvIm2col: im2col + GEMM (no cuDNN on a GPU, no Winograd on the
	// CPU).
	ConvIm2col = "im2col"
)

// ConvModes are the convolution paths, in the order help texts name them:
// the one list of them.
var ConvModes = []string{ConvAuto, ConvCudnn, ConvIm2col}

// CheckConv reports an unknown --conv value.
func CheckConv(mode string) error {
	for _, m := range ConvModes {
		if mode == m {
			return nil
		}
	}
	return fmt.Errorf("--conv %q: want %s", mode, strings.Join(ConvModes, ", "))
}

// Options are a backend's settings. They flow one way: from the command
// line (or a sweep file, or the environment through OptionsFromEnv)
// through Open to the backend, which reads no settings of its own.
type Options struct {
	// Threads bounds the CPU backend's goroutines (0: all cores).
	Threads int
	// Conv is the convolution path: one of ConvModes.
	Conv string
	// TF32 allows TF32 tensor-op math in GPU matrix products and
	// convolutions (inputs rounded to 10-bit mantissas, about 10× faster
	// on Ampere and Hopper GPUs).
	TF32 bool
	// CudnnFind measures cuDNN's candidate algorithms once per
	// convolution shape instead of taking its heuristics' first choice.
	CudnnFind bool
	// ExactAlloc makes every GPU allocation exactly the size asked for,
	// so that a memory checker behind the driver (compute-sanitizer, or
	// AddressSanitizer on the emulated device) sees an overrun of a
	// tensor as one.
	ExactAlloc bool
	// Note receives one-line notices: fallbacks to the CPU, and
	// convolution shapes cuDNN rejects. Nil discards them.
	Note func(string)
}

// DefaultOptions are the settings of an empty environment and no flags.
func DefaultOptions() Options {
	return Options{Conv: ConvAuto, TF32: true, CudnnFind: true}
}

// note passes s to o.Note when there is one.
func (o Options) note(s string) {
	if o.Note != nil {
		o.Note(s)
	}
}

// Check reports a thread count or convolution path out of range.
func (o Options) Check() error {
	if err := CheckThreads(o.Threads); err != nil {
		return err
	}
	return CheckConv(o.Conv)
}

// OptionsFromEnv returns DefaultOptions changed by the environment:
// QMUL_CONV (a convolution path), QMUL_TF32, QMUL_CUDNN_FIND and
// QMUL_CUDA_EXACT_ALLOC (booleans: 1 or 0, true or false). An unset or
// empty variable leaves its default; anything else unreadable is an error
// naming it.
func OptionsFromEnv() (Options, error) {
	o := DefaultOptions()
	if v := os.Getenv("QMUL_CONV"); v != "" {
		if err := CheckConv(v); err != nil {
			return o, fmt.Errorf("QMUL_CONV=%q: want %s", v, strings.Join(ConvModes, ", "))
		}
		o.Conv = v
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"QMUL_TF32", &o.TF32}, {"QMUL_CUDNN_FIND", &o.CudnnFind}, {"QMUL_CUDA_EXACT_ALLOC", &o.ExactAlloc}} {
		v := os.Getenv(b.name)
		if v == "" {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("%s=%q: want 0 or 1", b.name, v)
		}
		*b.dst = on
	}
	return o, nil
}
