//go:build cuda

package cuda

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/device"
)

// TestMain runs the library report of a child process (inspectHelper)
// when asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("QMUL_TEST_INSPECT") == "1" {
		os.Exit(inspectHelper())
	}
	os.Exit(m.Run())
}

// inspectHelper prints device.Inspect's report as JSON: what `qmulgpu
// devices` would find with this process's environment.
func inspectHelper() int {
	if err := json.NewEncoder(os.Stdout).Encode(device.Inspect()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestLibrariesFromFakeVenv puts the emulated device's fake libraries
// where a GPU image with PyTorch from pip has them — the driver and NVML
// alone on the loader path, cuBLAS 13 in a virtual environment's
// nvidia/cu13/lib, cuBLAS 12 in nvidia/cublas/lib and cuDNN 9 with its
// sub-libraries in nvidia/cudnn/lib — and checks what a fresh process
// chooses: cuBLAS 13 and cuDNN from the venv (the system's older cuBLAS
// on the loader path, if any, left alone), their companions loaded from
// the same folders, GPU 0 usable; and with a driver for CUDA 12.4, cuBLAS
// 12, with the reason cuBLAS 13 was passed over.
func TestLibrariesFromFakeVenv(t *testing.T) {
	emu := os.Getenv("QM_EMU_LIBS")
	if emu == "" {
		t.Skip("needs the emulated device's libraries: QM_EMU_LIBS names their folder (scripts/test-emu.sh sets it)")
	}
	root := t.TempDir()
	site := filepath.Join(root, "venv", "lib", "python3.12", "site-packages")
	for dir, libs := range map[string][]string{
		filepath.Join(root, "driver"):            {"libcuda.so.1", "libnvidia-ml.so.1"},
		filepath.Join(site, "nvidia/cu13/lib"):   {"libcublas.so.13", "libcublasLt.so.13"},
		filepath.Join(site, "nvidia/cublas/lib"): {"libcublas.so.12", "libcublasLt.so.12"},
		filepath.Join(site, "nvidia/cudnn/lib"):  {"libcudnn.so.9", "libcudnn_cnn.so.9", "libcudnn_ops.so.9"},
	} {
		for _, l := range libs {
			copyFile(t, filepath.Join(emu, l), filepath.Join(dir, l))
		}
	}
	cudnn := filepath.Join(site, "nvidia/cudnn/lib")
	for _, tc := range []struct {
		driver string
		cublas string
		note   string
	}{
		{"13000", filepath.Join(site, "nvidia/cu13/lib/libcublas.so.13"), ""},
		{"12040", filepath.Join(site, "nvidia/cublas/lib/libcublas.so.12"),
			"cuBLAS 13 needs a driver for CUDA 13, this one runs CUDA 12 at most"},
	} {
		t.Run("driver "+tc.driver, func(t *testing.T) {
			r := inspectChild(t, map[string]string{"LD_LIBRARY_PATH": filepath.Join(root, "driver"),
				"VIRTUAL_ENV": filepath.Join(root, "venv"), "QM_EMU_DRIVER_VERSION": tc.driver})
			if r.Auto != "cuda:0" || !strings.HasPrefix(r.Conv, "cuDNN 9.1.0 ("+cudnn) {
				t.Errorf("--device auto uses %q (%s), convolutions %q: want cuda:0 on the venv's cuDNN", r.Auto, r.Error, r.Conv)
			}
			want := map[string]string{
				"cuBLAS":            tc.cublas,
				"cuBLASLt":          filepath.Dir(tc.cublas),
				"cuDNN":             filepath.Join(cudnn, "libcudnn.so.9"),
				"cuDNN sub-library": cudnn,
				"CUDA driver":       filepath.Join(root, "driver", "libcuda.so.1"),
			}
			seen := map[string]int{}
			for _, l := range r.Libraries {
				seen[l.Name]++
				if w, ok := want[l.Name]; ok && l.Path != w && filepath.Dir(l.Path) != w {
					t.Errorf("%s loaded from %s (%s), want %s", l.Name, l.Path, l.FoundIn, w)
				}
				if l.Name == "cuBLAS" && (!strings.Contains(l.FoundIn, "($VIRTUAL_ENV)") || !strings.Contains(l.Note, tc.note)) {
					t.Errorf("cuBLAS found in %q, note %q: want the venv, and a note saying %q", l.FoundIn, l.Note, tc.note)
				}
			}
			if seen["cuBLAS"] != 1 || seen["cuBLASLt"] != 1 || seen["cuDNN"] != 1 || seen["cuDNN sub-library"] != 2 {
				t.Errorf("libraries %+v: want cuBLAS, its cuBLASLt, cuDNN and its two sub-libraries", r.Libraries)
			}
		})
	}
}

// inspectChild runs inspectHelper in a child process whose environment is
// this one's without any CUDA library setting, plus env.
func inspectChild(t *testing.T, env map[string]string) device.Report {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX", "VIRTUAL_ENV", "QMUL_CUBLAS", "QMUL_CUDNN":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "QMUL_TEST_INSPECT=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	var r device.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child's report %q: %v", out, err)
	}
	t.Logf("%+v", r)
	return r
}

// copyFile copies src to dst, making dst's folder.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
