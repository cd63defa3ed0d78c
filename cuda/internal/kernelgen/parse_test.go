package kernelgen

import (
	"strconv"
	"strings"
	"testing"
)

// parseOne parses a single kernels/k.cu holding src.
func parseOne(src string) (*Source, error) {
	return Parse([]Input{{"kernels/k.cu", []byte(src)}})
}

// signature renders a kernel as "name(type name, ...)@line".
func signature(k *Kernel) string {
	var ps []string
	for _, p := range k.Params {
		ps = append(ps, p.CType()+" "+p.Name)
	}
	return k.Name + "(" + strings.Join(ps, ", ") + ")@" + strconv.Itoa(k.Line)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"one line", `extern "C" __global__ void qm_a(const float* x, float* y, long long n) { y[0] = x[0]; }`,
			[]string{"qm_a(const float* x, float* y, long long n)@1"}},
		{"wrapped, with comments",
			"// qm_b: a comment mentioning __global__ and extern \"C\"\n" +
				"extern \"C\" __global__ void qm_b(const double* p, /* in */ int C,\n" +
				"    double eps, unsigned char* img, const unsigned int *u, int* status)\n{\n}\n",
			[]string{"qm_b(const double* p, int C, double eps, unsigned char* img, const unsigned int* u, int* status)@2"}},
		{"no parameters", "extern \"C\" __global__ void qm_c()\n{\n}\n", []string{"qm_c()@1"}},
		{"device functions, literals and extern __shared__ are not kernels",
			"__device__ float f(float x) { return x; }\n" +
				"#define QM_X 4\n" +
				"extern \"C\" __global__ void qm_d(float* y)\n{\n" +
				"    extern __shared__ float s[];\n    const char* m = \"}{\";\n    char c = '}';\n}\n" +
				"extern \"C\" __global__ void qm_e(float* y) {}\n",
			[]string{"qm_d(float* y)@3", "qm_e(float* y)@9"}},
		{"a struct by value",
			"#define QM_N 3\nstruct qm_s {\n    float a[QM_N];\n    int n;\n};\n" +
				"extern \"C\" __global__ void qm_f(qm_s s, int k) {}\n",
			[]string{"qm_f(qm_s s, int k)@6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := parseOne(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range src.Files[0].Kernels {
				got = append(got, signature(k))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("kernels\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseGoTypes(t *testing.T) {
	src, err := parseOne(`extern "C" __global__ void qm_a(const float* a, double* b, const int* c, long long* d,
		const unsigned char* e, unsigned int* f, unsigned long long* g, int h, long long i, float j, double k) {}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"*float32", "*float64", "*int32", "*int64", "*uint8", "*uint32", "*uint64",
		"int32", "int64", "float32", "float64"}
	for i, p := range src.Files[0].Kernels[0].Params {
		got := ""
		if p.Elem != nil {
			got = "*" + p.Elem.Go
		} else {
			got = p.Scalar.Go
		}
		if got != want[i] {
			t.Errorf("parameter %s (%s) maps to %s, want %s", p.Name, p.CType(), got, want[i])
		}
	}
}

// TestParseErrors: everything outside the restricted form is an error
// naming the file and the line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"not extern C", "\n__global__ void qm_a(float* x) {}", `kernels/k.cu:2: a kernel must be declared extern "C"`},
		{"return type", `extern "C" __global__ int qm_a(float* x) {}`, "kernels/k.cu:1: cannot parse a kernel here"},
		{"launch bounds", `extern "C" __global__ void __launch_bounds__(256) qm_a(float* x) {}`,
			"kernels/k.cu:1: cannot parse a kernel here"},
		{"template", "template <class T>\nextern \"C\" __global__ void qm_a(T* x) {}",
			"kernels/k.cu:2: kernel qm_a: parameter \"T* x\": unknown type T (pointers are to double, float, int,"},
		{"restrict", "extern \"C\" __global__ void qm_a(const float* x,\n float* __restrict__ y) {}",
			"kernels/k.cu:2: kernel qm_a: cannot parse parameter \"float* __restrict__ y\""},
		{"const after star", `extern "C" __global__ void qm_a(float* const x) {}`, "kernels/k.cu:1: kernel qm_a: cannot parse parameter"},
		{"pointer to pointer", `extern "C" __global__ void qm_a(float** x) {}`, "kernels/k.cu:1: kernel qm_a: cannot parse parameter"},
		{"reference", `extern "C" __global__ void qm_a(int& x) {}`, "kernels/k.cu:1: kernel qm_a: cannot parse parameter"},
		{"unnamed", `extern "C" __global__ void qm_a(float*) {}`, "kernels/k.cu:1: kernel qm_a: cannot parse parameter"},
		{"void list", `extern "C" __global__ void qm_a(void) {}`, "kernels/k.cu:1: kernel qm_a: cannot parse parameter"},
		{"empty parameter", `extern "C" __global__ void qm_a(float* x, ) {}`, "kernels/k.cu:1: kernel qm_a: an empty parameter"},
		{"unsigned by value", "extern \"C\" __global__ void qm_a(\nunsigned int n) {}",
			"kernels/k.cu:2: kernel qm_a: parameter \"unsigned int n\": unsigned int is not passed by value"},
		{"unknown type", `extern "C" __global__ void qm_a(size_t n) {}`, "kernels/k.cu:1: kernel qm_a: parameter \"size_t n\": unknown type size_t"},
		{"declaration only", `extern "C" __global__ void qm_a(float* x);`, "kernels/k.cu:1: kernel qm_a: want its body"},
		{"open list", `extern "C" __global__ void qm_a(float* x`, "kernels/k.cu:1: kernel qm_a: its parameter list does not end"},
		{"extern C block", "extern \"C\" {\n}", "kernels/k.cu:1: cannot parse a kernel here"},
		{"struct with a pointer", "struct qm_s {\n    float* p;\n};\nextern \"C\" __global__ void qm_a(qm_s s) {}",
			"kernels/k.cu:2: struct qm_s: cannot parse member \"float* p\""},
		{"struct length", "struct qm_s {\n    float a[QM_NONE];\n};\nextern \"C\" __global__ void qm_a(qm_s s) {}",
			"kernels/k.cu:2: array length QM_NONE is neither a number nor an integer #define"},
		{"unterminated comment", "/* a\n\nextern \"C\" __global__ void qm_a(float* x) {}", "kernels/k.cu:1: unterminated comment"},
		{"unterminated string", "\nconst char* s = \"abc\n", "kernels/k.cu:2: unterminated literal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOne(tc.src)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

func TestParseAcrossFiles(t *testing.T) {
	kernel := []byte(`extern "C" __global__ void qm_a(float* x) {}`)
	tests := []struct {
		name   string
		inputs []Input
		want   string
	}{
		{"one kernel twice", []Input{{"kernels/a.cu", kernel}, {"kernels/b.cu", []byte("\n\n" + string(kernel))}},
			"kernels/b.cu:3: kernel qm_a is also defined at kernels/a.cu:1"},
		{"a kernel in a header", []Input{{"kernels/common.cuh", kernel}}, "kernels/common.cuh:1: kernels are defined in .cu files, not in headers"},
		{"a #define with two values", []Input{{"kernels/a.cu", []byte("#define QM_N 1\n")}, {"kernels/b.cu", []byte("\n#define QM_N 2\n")}},
			"kernels/b.cu:2: #define QM_N 2, but 1 at kernels/a.cu:1"},
		{"a struct from another file", []Input{{"kernels/a.cu", []byte("struct qm_s {\n    int n;\n};\n")},
			{"kernels/b.cu", []byte(`extern "C" __global__ void qm_b(qm_s s) {}`)}},
			"kernels/b.cu:1: kernel qm_b: parameter \"qm_s s\": unknown type qm_s (a struct must be defined above, in this file)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.inputs)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDefines(t *testing.T) {
	src, err := Parse([]Input{{"kernels/common.cuh", []byte(
		"#define QM_A 256\n#  define QM_B 7 \n#define QM_EXPR (1 << 3)\n#define QM_LONG \\\n  9\n#define QM_FN(x) x\n")}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"QM_A": 256, "QM_B": 7, "QM_LONG": 9}
	if len(src.Defines) != len(want) {
		t.Errorf("defines %v, want %v", src.Defines, want)
	}
	for k, v := range want {
		if src.Defines[k] != v {
			t.Errorf("%s = %d, want %d", k, src.Defines[k], v)
		}
	}
}

// TestStructLayout checks the layout against what C compilers do for
// these members (offsets 0, 8, 16 and 28 below).
func TestStructLayout(t *testing.T) {
	tests := []struct {
		fields      string
		size, align int
	}{
		{"float mean[64]; float std[64];", 512, 4},
		{"unsigned long long a[160]; unsigned long long b[160]; long long len[160];", 3840, 8},
		{"unsigned char c; double d; int e[3]; unsigned char f;", 32, 8},
		{"unsigned char c[3];", 3, 1},
		{"int a; unsigned char b;", 8, 4},
	}
	for _, tc := range tests {
		src, err := parseOne("struct qm_s { " + tc.fields + " };\nextern \"C\" __global__ void qm_a(qm_s s) {}")
		if err != nil {
			t.Fatal(err)
		}
		s := src.Files[0].Kernels[0].Params[0].Struct
		if s.Size != tc.size || s.Align != tc.align {
			t.Errorf("struct { %s }: %d bytes aligned to %d, want %d and %d", tc.fields, s.Size, s.Align, tc.size, tc.align)
		}
	}
}
