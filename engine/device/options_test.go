package device

import (
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

func TestOptionsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name, env, value string
		check            func(Options) bool
		err              string
	}{
		{"defaults", "QMUL_TF32", "", func(o Options) bool {
			return o.Conv == ConvAuto && o.TF32 && o.CudnnFind && !o.ExactAlloc && o.Threads == 0
		}, ""},
		{"tf32 off", "QMUL_TF32", "0", func(o Options) bool { return !o.TF32 }, ""},
		{"tf32 true", "QMUL_TF32", "true", func(o Options) bool { return o.TF32 }, ""},
		{"tf32 bad", "QMUL_TF32", "maybe", nil, `QMUL_TF32="maybe": want 0 or 1`},
		{"find off", "QMUL_CUDNN_FIND", "0", func(o Options) bool { return !o.CudnnFind }, ""},
		{"exact on", "QMUL_CUDA_EXACT_ALLOC", "1", func(o Options) bool { return o.ExactAlloc }, ""},
		{"exact bad", "QMUL_CUDA_EXACT_ALLOC", "yes", nil, `QMUL_CUDA_EXACT_ALLOC="yes": want 0 or 1`},
		{"conv", "QMUL_CONV", "im2col", func(o Options) bool { return o.Conv == ConvIm2col }, ""},
		{"conv bad", "QMUL_CONV", "fft", nil, `QMUL_CONV="fft": want auto, cudnn, im2col`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"QMUL_TF32", "QMUL_CUDNN_FIND", "QMUL_CUDA_EXACT_ALLOC", "QMUL_CONV"} {
				t.Setenv(v, "")
			}
			t.Setenv(tc.env, tc.value)
			o, err := OptionsFromEnv()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Errorf("%s=%q: %+v, %v", tc.env, tc.value, o, err)
			}
		})
	}
}

func TestCheckConv(t *testing.T) {
	for _, m := range ConvModes {
		if err := CheckConv(m); err != nil {
			t.Errorf("CheckConv(%q): %v", m, err)
		}
	}
	if err := CheckConv("fft"); err == nil || !strings.Contains(err.Error(), "want auto, cudnn, im2col") {
		t.Errorf("CheckConv(fft) = %v", err)
	}
}

// TestOpenCPU: the CPU backend opens with any convolution path but
// cudnn, which it cannot honour, and takes the path it is given.
func TestOpenCPU(t *testing.T) {
	var notes []string
	opts := DefaultOptions()
	opts.Note = func(s string) { notes = append(notes, s) }
	for _, conv := range ConvModes {
		opts.Conv = conv
		b, err := Open("cpu", opts)
		if conv == ConvCudnn {
			if err == nil || !strings.Contains(err.Error(), "--conv cudnn: the cpu backend has no cuDNN") {
				t.Errorf("Open(cpu, --conv cudnn) = %v, %v", b, err)
			}
			continue
		}
		if err != nil || b.Name() != "cpu" {
			t.Errorf("Open(cpu, --conv %s) = %v, %v", conv, b, err)
			continue
		}
		// The path reaches the backend, which names its algorithms:
		// Winograd's (in builds with C kernels) only under auto.
		auto := cpu.New(0).Describe()
		if d := b.Describe(); conv == ConvAuto && d != auto || conv == ConvIm2col && strings.Contains(d, "Winograd") {
			t.Errorf("--conv %s: backend says %q", conv, d)
		}
	}
	if len(notes) != 0 {
		t.Errorf("notes %q for the CPU backend", notes)
	}
	if _, err := Open("tpu", DefaultOptions()); err == nil {
		t.Error("Open(tpu) succeeded")
	}
}
