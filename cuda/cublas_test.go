//go:build cuda

package cuda

import (
	"fmt"
	"strings"
	"testing"
)

func TestLoadCublasErrors(t *testing.T) {
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"/nonexistent/libcublas.so.13", "/nonexistent/libcublas.so.12"},
			[]string{"no usable cuBLAS library", "QMUL_CUBLAS", "/nonexistent/libcublas.so.13", "/nonexistent/libcublas.so.12"}},
		{[]string{"libc.so.6"}, []string{"libc.so.6 lacks cublasCreate_v2"}},
	}
	for _, tc := range tests {
		l, err := loadCublas(tc.paths)
		if err == nil {
			t.Errorf("loadCublas(%q) = %v, want an error", tc.paths, l)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("loadCublas(%q): error %q does not say %q", tc.paths, err, w)
			}
		}
	}
}

// TestLoadCublas loads the newest cuBLAS present (no GPU needed) and checks
// that a missing candidate before it does not matter.
func TestLoadCublas(t *testing.T) {
	l, err := loadCublas(append([]string{"/nonexistent/libcublas.so.99"}, cublasLibraries...))
	if err != nil {
		t.Skipf("no cuBLAS library: %v", err)
	}
	t.Logf("loaded %s", l.path)
	if l.sgemm == nil || l.sgemmStrided == nil || l.setMathMode == nil {
		t.Error("entry points missing")
	}
}

func TestCublasErrors(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{0, "<nil>"},
		{3, "cublasSgemm_v2(m 2): CUBLAS_STATUS_ALLOC_FAILED: cuBLAS call failed"},
		{13, "cublasSgemm_v2(m 2): CUBLAS_STATUS_EXECUTION_FAILED: cuBLAS call failed"},
		{99, "cublasSgemm_v2(m 2): CUBLAS_STATUS_99: cuBLAS call failed"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(checkBlasCode(nil, tc.code, "cublasSgemm_v2(m %d)", 2)); got != tc.want {
			t.Errorf("checkBlasCode(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestTF32FromEnv(t *testing.T) {
	tests := []struct {
		env  string
		want bool
		err  bool
	}{
		{"", true, false},
		{"1", true, false},
		{"0", false, false},
		{"false", false, false},
		{"maybe", false, true},
	}
	for _, tc := range tests {
		t.Setenv("QMUL_TF32", tc.env)
		got, err := tf32FromEnv()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("QMUL_TF32=%q: %v, %v; want %v, error %v", tc.env, got, err, tc.want, tc.err)
		}
	}
}
