//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
)

// stubCublas is a cuBLAS with every entry point the binding resolves,
// reporting version MAJOR.0.2.
const stubCublas = `
int cublasCreate_v2(void** h) { *h = 0; return 0; }
int cublasDestroy_v2(void* h) { return 0; }
int cublasSetStream_v2(void* h, void* s) { return 0; }
int cublasSetMathMode(void* h, int m) { return 0; }
int cublasSgemm_v2(void) { return 0; }
int cublasSgemmStridedBatched(void) { return 0; }
int cublasGetProperty(int type, int* v) { *v = type == 0 ? MAJOR : type == 1 ? 0 : 2; return 0; }
`

// buildLib compiles C source into the shared library dir/name, with that
// soname and linked with the given libraries of dir.
func buildLib(t *testing.T, dir, name, src string, flags ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	c := filepath.Join(t.TempDir(), name+".c")
	so := filepath.Join(dir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-shared", "-fPIC", "-Wl,-soname," + name, "-o", so, c, "-L" + dir}, flags...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Skipf("no C compiler for the stub libraries: %v: %s", err, out)
	}
	return so
}

// stubCublasDirs makes a folder holding "cuBLAS 77" (which needs
// cuBLASLt 77 beside it, as the real cuBLAS needs its cuBLASLt) and
// "cuBLAS 76", and a folder holding cuBLAS 77 without its cuBLASLt. The
// versions are ones no machine has, so that the loader cannot find a
// cuBLASLt of that version anywhere else.
func stubCublasDirs(t *testing.T) (good, broken string) {
	good, broken = t.TempDir(), t.TempDir()
	buildLib(t, good, "libcublasLt.so.77", "int cublasLtGetVersion(void) { return 770002; }\n")
	buildLib(t, good, "libcublas.so.77", "#define MAJOR 77\n"+stubCublas+
		"int cublasLtGetVersion(void);\nint qm_needs_lt(void) { return cublasLtGetVersion(); }\n", "-l:libcublasLt.so.77")
	buildLib(t, good, "libcublas.so.76", "#define MAJOR 76\n"+stubCublas)
	data, err := os.ReadFile(filepath.Join(good, "libcublas.so.77"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "libcublas.so.77"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return good, broken
}

// TestPickCublas: of the cuBLAS libraries found, the first that the
// driver runs and that creates a handle is chosen (its cuBLASLt loaded
// from its folder first), and each one passed over is named with why.
func TestPickCublas(t *testing.T) {
	good, broken := stubCublasDirs(t)
	c77 := libsearch.Candidate{Path: good + "/libcublas.so.77", Where: "pip wheel nvidia/cu77"}
	c76 := libsearch.Candidate{Path: good + "/libcublas.so.76", Where: "$CUDA_HOME"}
	bad77 := libsearch.Candidate{Path: broken + "/libcublas.so.77", Where: "/usr/local/cuda*"}
	missing := libsearch.Candidate{Path: "/nonexistent/libcublas.so.77", Where: "loader path"}
	refuse77 := func(l *cublas) error {
		if strings.HasSuffix(l.lib.path, ".so.77") {
			return errors.New("cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED")
		}
		return nil
	}
	for _, tc := range []struct {
		name        string
		cands       []libsearch.Candidate
		driverMajor int
		try         func(*cublas) error
		want        string // path chosen
		version     string
		note        []string
	}{
		{"newest", []libsearch.Candidate{missing, c77, c76}, 77, nil, c77.Path, "77.0.2", nil},
		{"driver too old", []libsearch.Candidate{c77, c76}, 76, nil, c76.Path, "76.0.2",
			[]string{c77.Path + " (pip wheel nvidia/cu77): cuBLAS 77 needs a driver for CUDA 77, this one runs CUDA 76 at most"}},
		{"handle fails", []libsearch.Candidate{c77, c76}, 77, refuse77, c76.Path, "76.0.2",
			[]string{c77.Path + " (pip wheel nvidia/cu77): cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED"}},
		{"cuBLASLt missing", []libsearch.Candidate{bad77, c76}, 77, nil, c76.Path, "76.0.2",
			[]string{bad77.Path + " (/usr/local/cuda*): cannot load the cuBLAS library", "libcublasLt.so.77: cannot open shared object file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			try := tc.try
			if try == nil {
				try = func(*cublas) error { return nil }
			}
			l, note, err := pickCublas(tc.cands, tc.driverMajor, try)
			if err != nil {
				t.Fatal(err)
			}
			defer l.lib.close()
			if l.lib.path != tc.want || l.version() != tc.version {
				t.Errorf("chose %s (version %s), want %s (%s)", l.lib.path, l.version(), tc.want, tc.version)
			}
			for _, w := range tc.note {
				if !strings.Contains(note, w) {
					t.Errorf("note %q does not say %q", note, w)
				}
			}
			if len(tc.note) == 0 && note != "" {
				t.Errorf("note %q, want none", note)
			}
			if tc.want == c77.Path && (len(l.lib.parts) != 1 || filepath.Base(l.lib.parts[0].path) != "libcublasLt.so.77") {
				t.Errorf("companions %v, want libcublasLt.so.77", l.lib.parts)
			}
		})
	}
}

func TestPickCublasErrors(t *testing.T) {
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"/nonexistent/libcublas.so.13", "/nonexistent/libcublas.so.12"},
			[]string{"no usable cuBLAS library", "QMUL_CUBLAS", "/nonexistent/libcublas.so.13, /nonexistent/libcublas.so.12: not found"}},
		{[]string{"libc.so.6"}, []string{"libc.so.6 lacks cublasCreate_v2"}},
	}
	for _, tc := range tests {
		var cands []libsearch.Candidate
		for _, p := range tc.paths {
			cands = append(cands, libsearch.Candidate{Path: p, Where: "test"})
		}
		l, _, err := pickCublas(cands, 0, nil)
		if err == nil {
			t.Errorf("pickCublas(%q) = %v, want an error", tc.paths, l)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("pickCublas(%q): error %q does not say %q", tc.paths, err, w)
			}
		}
	}
}

// TestSearchFindsCublas loads the newest cuBLAS the search finds on this
// machine (no GPU needed), if any.
func TestSearchFindsCublas(t *testing.T) {
	l, note, err := pickCublas(searchCandidates("QMUL_CUBLAS", cublasSonames), 0, nil)
	if err != nil {
		t.Skipf("no cuBLAS library: %v", err)
	}
	defer l.lib.close()
	t.Logf("loaded %s (%s) %s; %s", l.lib.path, l.lib.where, l.version(), note)
	if !filepath.IsAbs(l.lib.path) || l.sgemm == nil || l.sgemmStrided == nil || l.setMathMode == nil {
		t.Errorf("path %q or entry points missing", l.lib.path)
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
