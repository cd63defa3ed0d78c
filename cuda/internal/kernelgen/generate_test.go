package kernelgen

import (
	"bytes"
	"go/ast"
	"go/importer"
	goparser "go/parser"
	gotoken "go/token"
	"go/types"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stubs declares, as package cuda does, what generated launchers use.
const stubs = `package cuda

import "unsafe"

type devPtr uint64

type dptr[T float32 | float64 | int32 | int64 | uint8 | uint32 | uint64] devPtr

type kernelCall struct {
	kernel string
	args   []any
}

type rawArg struct{ data []byte; align int }

func structArg[T any](v *T) rawArg {
	return rawArg{unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)), int(unsafe.Alignof(*v))}
}

// uses calls each launcher as package cuda would.
var uses = []kernelCall{
	qmA(dptr[float32](1), 0, 3, 2.5, dptr[uint8](0)),
	qmB(&qmS{}, 1, 2),
}
`

const sample = `#define QM_N 3
struct qm_s {
    float a[QM_N];
    unsigned long long p;
    int len;
};
extern "C" __global__ void qm_a(const float* x, float* y, long long n, double eps, unsigned char* func) {}
extern "C" __global__ void qm_b(qm_s s, int type, int any) {}
`

// TestGoCompiles type-checks generated launchers with stand-ins for the
// declarations of package cuda, including parameters named like Go
// keywords and like names the launchers use.
func TestGoCompiles(t *testing.T) {
	src, err := parseOne(sample)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Go(src.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte(Header+"kernels/k.cu; DO NOT EDIT.\n")) {
		t.Errorf("generated file begins %q", out[:60])
	}
	for _, want := range []string{
		"func qmA(x, y dptr[float32], n int64, eps float64, func_ dptr[uint8]) kernelCall {",
		`return kernelCall{kernel: "qm_a", args: []any{devPtr(x), devPtr(y), n, eps, devPtr(func_)}}`,
		"func qmB(s *qmS, type_, any_ int32) kernelCall {",
		"\ta   [3]float32\n\tp   uint64\n\tlen int32\n",
		"[unsafe.Sizeof(qmS{}) - 32]struct{}{}",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("generated Go lacks %q:\n%s", want, out)
		}
	}
	fset := gotoken.NewFileSet()
	var files []*ast.File
	for name, text := range map[string][]byte{"k_kernels.go": out, "stubs.go": []byte(stubs)} {
		f, err := goparser.ParseFile(fset, name, text, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.Default()}
	if _, err := conf.Check("cuda", fset, files, nil); err != nil {
		t.Errorf("generated Go does not compile: %v\n%s", err, out)
	}
}

func TestEmu(t *testing.T) {
	src, err := parseOne(sample)
	if err != nil {
		t.Fatal(err)
	}
	out := string(Emu("kernels", src))
	for _, want := range []string{
		Header + "kernels/*.cu; DO NOT EDIT.\n",
		`static_assert(sizeof(qm_s) == 32 && alignof(qm_s) == 8, "kernels/k.cu:2: kernelgen lays qm_s out differently");`,
		"    QM_EMU_KERNEL(qm_a, void(const float*, float*, long long, double, unsigned char*)) // kernels/k.cu:7\n",
		"    QM_EMU_KERNEL(qm_b, void(qm_s, int, int)) // kernels/k.cu:8\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("emulator table lacks %q:\n%s", want, out)
		}
	}
}

func TestGoNamesCollide(t *testing.T) {
	src, err := parseOne("extern \"C\" __global__ void qm_a_b(int n) {}\nextern \"C\" __global__ void qm_aB(int n) {}")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkGoNames(src); err == nil || !strings.Contains(err.Error(), "kernels/k.cu:2: qm_a_b and qm_aB both become qmAB") {
		t.Errorf("error %v, want one naming both kernels", err)
	}
}

// repoRoot is the repository root, three folders up from this package.
const repoRoot = "../../.."

// TestGeneratedFilesAreCurrent fails when a kernel changed and the
// launchers or emulator tables were not generated again, or a generated
// file has no kernel file left. It runs in the plain `go test ./...`, so
// CI needs no step of its own.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	outs, err := Generate(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) < 10 {
		t.Fatalf("generated only %d files", len(outs))
	}
	for _, o := range outs {
		old, err := os.ReadFile(filepath.Join(repoRoot, o.Path))
		if err != nil {
			t.Errorf("%v: run %s", err, Command)
			continue
		}
		if !bytes.Equal(old, o.Data) {
			t.Errorf("%s is stale (%s): run %s", o.Path, firstDifference(old, o.Data), Command)
		}
	}
	old, err := Obsolete(repoRoot, outs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range old {
		t.Errorf("%s has no kernel file left: run %s", p, Command)
	}
}

// firstDifference describes the first line where two files differ.
func firstDifference(have, want []byte) string {
	a, b := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return "line " + strconv.Itoa(i+1) + " is " + strconv.Quote(a[i]) + ", want " + strconv.Quote(b[i])
		}
	}
	return "lengths differ"
}
