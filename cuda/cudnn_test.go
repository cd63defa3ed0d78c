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
	"time"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// fakeDNN is a convLib on a fakeGPU: it computes nothing, but checks what
// a real cuDNN would reject (descriptors used after destruction, operands
// outside their allocations, a workspace smaller than the algorithm
// needs) and records every call.
type fakeDNN struct {
	f *fakeGPU
	// heuristics and measured are the algorithms each query returns per
	// pass (measured: what find returns).
	heuristics, measured map[convPass][]convAlgo
	describeErr          error
	nextDesc             int
	live                 map[int]engine.ConvGeom // descriptors not yet destroyed
	describes            []engine.ConvGeom
	queries              []fakeQuery
	runs                 []fakeRun
	// notes are the backend's one-line notices.
	notes []string
}

type fakeQuery struct {
	pass convPass
	find bool
	tf32 bool
	op   convOperands
	ws   uint64
}

type fakeRun struct {
	pass convPass
	algo convAlgo
	op   convOperands
	ws   uint64
	beta float32
}

// goodAlgos is what the fake offers by default: for each pass one
// deterministic algorithm with a small workspace and one without.
func goodAlgos() map[convPass][]convAlgo {
	m := map[convPass][]convAlgo{}
	for _, p := range []convPass{passForward, passBackwardData, passBackwardFilter} {
		m[p] = []convAlgo{{algo: 1, memory: 1024, deterministic: true}, {algo: 0, deterministic: true}}
	}
	return m
}

func newFakeDNN(f *fakeGPU) *fakeDNN {
	d := &fakeDNN{f: f, heuristics: goodAlgos(), measured: goodAlgos(), live: map[int]engine.ConvGeom{}}
	f.dnn = d
	return d
}

// newFakeDNNBackend returns a backend on a fake GPU with a fake cuDNN, in
// the given convolution mode.
func newFakeDNNBackend(t *testing.T, mode string, setup func(d *fakeDNN)) (*Backend, *fakeGPU, *fakeDNN) {
	t.Helper()
	f := newFakeGPU(t)
	d := newFakeDNN(f)
	if setup != nil {
		setup(d)
	}
	opts := device.DefaultOptions()
	opts.Conv = mode
	opts.Note = func(s string) { d.notes = append(d.notes, s) }
	b, err := newBackend(f, 0, deviceInfo{name: "Fake GPU", major: 9, minor: 0, sms: 4, totalMem: 80 << 30}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, f, d
}

func (d *fakeDNN) name() string { return "cuDNN 9.9.9 (fake)" }

func (d *fakeDNN) statusName(code int) string { return fmt.Sprintf("FAKE_STATUS_%d", code) }

func (d *fakeDNN) describe(g engine.ConvGeom) (convDesc, error) {
	if d.describeErr != nil {
		return nil, d.describeErr
	}
	d.nextDesc++
	d.live[d.nextDesc] = g
	d.describes = append(d.describes, g)
	return d.nextDesc, nil
}

func (d *fakeDNN) undescribe(desc convDesc) error {
	if _, ok := d.live[desc.(int)]; !ok {
		d.f.t.Errorf("descriptor %v destroyed twice or never created", desc)
	}
	delete(d.live, desc.(int))
	return nil
}

// geom checks that desc is live and returns its shape.
func (d *fakeDNN) geom(desc convDesc) engine.ConvGeom {
	g, ok := d.live[desc.(int)]
	if !ok {
		d.f.t.Errorf("descriptor %v used after destruction", desc)
	}
	return g
}

// checkOperands checks that each operand lies inside one allocation.
func (d *fakeDNN) checkOperands(g engine.ConvGeom, op convOperands, what string) {
	for _, o := range []struct {
		name  string
		p     devPtr
		elems int
	}{
		{"x", op.x, g.N * g.H * g.W * g.C},
		{"w", op.w, g.K * g.R * g.S * (g.C / g.Groups)},
		{"y", op.y, g.N * g.OutH() * g.OutW() * g.K},
	} {
		if o.p == 0 {
			d.f.t.Errorf("%s: operand %s is NULL", what, o.name)
			continue
		}
		if _, err := d.f.mem(o.p, uint64(4*o.elems)); err != nil {
			d.f.t.Errorf("%s: operand %s: %v", what, o.name, err)
		}
	}
}

func (d *fakeDNN) checkWorkspace(ws devPtr, bytes uint64, what string) {
	if bytes == 0 {
		return
	}
	if _, err := d.f.mem(ws, bytes); err != nil {
		d.f.t.Errorf("%s: workspace of %d bytes: %v", what, bytes, err)
	}
}

func (d *fakeDNN) algorithms(desc convDesc, pass convPass, find, tf32 bool, op convOperands, ws devPtr, wsBytes uint64) ([]convAlgo, error) {
	g := d.geom(desc)
	d.queries = append(d.queries, fakeQuery{pass, find, tf32, op, wsBytes})
	if !find {
		return d.heuristics[pass], nil
	}
	d.checkOperands(g, op, "find "+pass.cudnnName())
	d.checkWorkspace(ws, wsBytes, "find "+pass.cudnnName())
	return d.measured[pass], nil
}

func (d *fakeDNN) workspace(desc convDesc, pass convPass, a convAlgo) (uint64, error) {
	d.geom(desc)
	for _, c := range d.heuristics[pass] {
		if c.algo == a.algo {
			return c.memory, nil
		}
	}
	return 0, fmt.Errorf("fake cuDNN: algorithm %d of %s unknown", a.algo, pass.cudnnName())
}

func (d *fakeDNN) run(desc convDesc, pass convPass, a convAlgo, op convOperands, ws devPtr, wsBytes uint64, beta float32) error {
	g := d.geom(desc)
	d.checkOperands(g, op, pass.runName())
	need, err := d.workspace(desc, pass, a)
	if err != nil {
		return err
	}
	if wsBytes < need {
		d.f.t.Errorf("%s algorithm %d: workspace %d bytes, needs %d", pass.runName(), a.algo, wsBytes, need)
	}
	d.checkWorkspace(ws, wsBytes, pass.runName())
	d.runs = append(d.runs, fakeRun{pass, a, op, wsBytes, beta})
	return nil
}

func (d *fakeDNN) close() error { return nil }

// runConv runs a forward and a backward (with dx) convolution of g.
func runConv(b *Backend, g engine.ConvGeom) (x, w, y, dx, dw *engine.Tensor) {
	x = b.Zeros(engine.Float32, g.N, g.H, g.W, g.C)
	w = b.Zeros(engine.Float32, g.K, g.R, g.S, g.C/g.Groups)
	y = b.Zeros(engine.Float32, g.N, g.OutH(), g.OutW(), g.K)
	dx = b.Zeros(engine.Float32, g.N, g.H, g.W, g.C)
	dw = b.Zeros(engine.Float32, w.Shape...)
	b.Conv2d(x, w, y, g)
	b.Conv2dBackward(x, w, y, dx, dw, g)
	return x, w, y, dx, dw
}

var conv3x3 = engine.ConvGeom{N: 2, H: 6, W: 6, C: 4, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}

func launched(f *fakeGPU, kernel string) int {
	n := 0
	for _, l := range f.launches {
		if l.kernel == kernel {
			n++
		}
	}
	return n
}

// TestConvWithoutCudnn: without cuDNN, auto takes im2col and says why,
// and --conv cudnn is refused with the reason.
func TestConvWithoutCudnn(t *testing.T) {
	b, f := newFakeBackend(t)
	if got := b.ConvPath(); !strings.HasPrefix(got, "im2col + cuBLAS SGEMM (cuDNN unusable: the fake GPU has no cuDNN") {
		t.Errorf("ConvPath %q", got)
	}
	runConv(b, conv3x3)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if launched(f, "qm_im2col_f32") == 0 || launched(f, "qm_col2im_f32") == 0 {
		t.Error("no im2col/col2im launch")
	}
	if err := b.SetConv(device.ConvCudnn); err == nil || !strings.Contains(err.Error(), "no cuDNN") {
		t.Errorf("SetConv(cudnn) without cuDNN: %v", err)
	}
	if err := b.SetConv("fft"); err == nil {
		t.Error("SetConv(fft) accepted")
	}
}

// TestCudnnPlansAreCached: descriptors once per shape, algorithms once per
// shape, pass and TF32 setting; every pass runs on cuDNN with the right
// operands, output scaling and math type.
func TestCudnnPlansAreCached(t *testing.T) {
	b, f, d := newFakeDNNBackend(t, device.ConvAuto, nil)
	other := conv3x3
	other.N = 3
	for range 3 {
		runConv(b, conv3x3)
	}
	runConv(b, other)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if len(d.describes) != 2 {
		t.Errorf("%d shapes described, want 2", len(d.describes))
	}
	// Per shape: heuristics and find for each of the three passes.
	if len(d.queries) != 2*3*2 {
		t.Errorf("%d algorithm queries, want 12", len(d.queries))
	}
	if len(d.runs) != 4*3 {
		t.Errorf("%d cuDNN runs, want 12", len(d.runs))
	}
	if n := launched(f, "qm_im2col_f32"); n != 0 || len(f.gemms) != 0 {
		t.Errorf("%d im2col launches and %d GEMMs on the cuDNN path", n, len(f.gemms))
	}
	for _, r := range d.runs {
		wantBeta := float32(0)
		if r.pass == passBackwardFilter {
			wantBeta = 1 // dw accumulates
		}
		if r.beta != wantBeta || r.algo.algo != 1 || r.ws != 1024 || r.algo.math != cudnnDefaultMath {
			t.Errorf("run %+v: want algorithm 1, workspace 1024, beta %v, default math", r, wantBeta)
		}
	}
	// TF32 off: new choices, run with FMA math.
	if err := b.SetTF32(false); err != nil {
		t.Fatal(err)
	}
	q := len(d.queries)
	runConv(b, conv3x3)
	if len(d.queries) != q+6 {
		t.Errorf("%d queries after switching TF32 off, want 6", len(d.queries)-q)
	}
	for _, r := range d.runs[len(d.runs)-3:] {
		if r.algo.math != cudnnFMAMath {
			t.Errorf("TF32 off: run with math type %d", r.algo.math)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(d.live) != 0 {
		t.Errorf("%d descriptors left after Close", len(d.live))
	}
}

// TestCudnnFindKeepsDW: measuring the backward-filter algorithms must not
// touch the layer's dw, which accumulates; the forward and backward-data
// measurements write the layer's own outputs, which the runs overwrite.
func TestCudnnFindKeepsDW(t *testing.T) {
	b, _, d := newFakeDNNBackend(t, device.ConvCudnn, nil)
	x, w, y, dx, dw := runConv(b, conv3x3)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	dev := func(t *engine.Tensor) devPtr { return devPtr(b.f32(t)) }
	want := map[convPass]convOperands{
		passForward:      {dev(x), dev(w), dev(y)},
		passBackwardData: {dev(dx), dev(w), dev(y)},
	}
	for _, q := range d.queries {
		if !q.find {
			continue
		}
		if q.pass == passBackwardFilter {
			if q.op.w == dev(dw) || q.op.x != dev(x) {
				t.Errorf("backward-filter find on %+v: dw must be scratch, x the layer's", q.op)
			}
			continue
		}
		if q.op != want[q.pass] {
			t.Errorf("%s find on %+v, want %+v", q.pass.cudnnName(), q.op, want[q.pass])
		}
	}
}

// TestCudnnAlgorithmChoice: failed, non-deterministic and too-hungry
// algorithms are skipped; find's order wins over the heuristics'; without
// find the heuristics' first usable algorithm runs.
func TestCudnnAlgorithmChoice(t *testing.T) {
	bound := maxWorkspaceBytes
	offer := []convAlgo{
		{algo: 5, status: 9, deterministic: true},         // failed
		{algo: 4, memory: bound + 1, deterministic: true}, // too much workspace
		{algo: 3, memory: 64},                             // non-deterministic
		{algo: 2, memory: 512, deterministic: true},
		{algo: 1, memory: 4096, deterministic: true},
	}
	tests := []struct {
		name     string
		find     bool
		measured []convAlgo
		want     int
		findWS   uint64
	}{
		{"heuristics", false, nil, 2, 0},
		{"find", true, []convAlgo{{algo: 3, memory: 64}, {algo: 1, memory: 4096, deterministic: true, time: 1},
			{algo: 2, memory: 512, deterministic: true, time: 2}}, 1, 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, d := newFakeDNNBackend(t, device.ConvCudnn, func(d *fakeDNN) {
				for p := range d.heuristics {
					d.heuristics[p] = offer
					d.measured[p] = tc.measured
				}
			})
			b.conv.find = tc.find
			runConv(b, conv3x3)
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			for _, r := range d.runs {
				if r.algo.algo != tc.want {
					t.Errorf("%s ran algorithm %d, want %d", r.pass.runName(), r.algo.algo, tc.want)
				}
			}
			for _, q := range d.queries {
				if q.find && q.ws != tc.findWS {
					t.Errorf("find with %d bytes of workspace, want %d", q.ws, tc.findWS)
				}
			}
		})
	}
}

// TestCudnnFallback: a shape cuDNN cannot describe, or offers nothing
// usable for, runs on im2col in either mode, with one line that names the
// shape and why.
func TestCudnnFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(d *fakeDNN)
		why   string
	}{
		{"describe fails", func(d *fakeDNN) { d.describeErr = errors.New("CUDNN_STATUS_NOT_SUPPORTED") }, "(CUDNN_STATUS_NOT_SUPPORTED)"},
		{"too much workspace", func(d *fakeDNN) {
			d.heuristics[passForward] = []convAlgo{{algo: 0, memory: maxWorkspaceBytes + 1, deterministic: true}}
		}, "no usable cuDNN algorithm: of 1 offered, 1 needing more than 256 MiB of workspace"},
		{"unsupported", func(d *fakeDNN) {
			d.heuristics[passForward] = []convAlgo{{algo: 0, status: 3000, deterministic: true}, {algo: 1, status: 3000}}
		}, "no usable cuDNN algorithm: of 2 offered, 2 unsupported (FAKE_STATUS_3000)"},
	} {
		for _, mode := range []string{device.ConvAuto, device.ConvCudnn} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				b, f, d := newFakeDNNBackend(t, mode, tc.setup)
				runConv(b, conv3x3)
				runConv(b, conv3x3)
				if err := b.Err(); err != nil {
					t.Fatal(err)
				}
				if len(d.runs) != 0 || launched(f, "qm_im2col_f32") == 0 {
					t.Errorf("%d cuDNN runs, %d im2col launches: want im2col only", len(d.runs), launched(f, "qm_im2col_f32"))
				}
				if len(d.describes) > 1 {
					t.Errorf("shape described %d times: the fallback is not cached", len(d.describes))
				}
				want := "convolutions: cuDNN 9.9.9 (fake) rejects the 3×3 stride-1 convolution of 4 to 8 channels, 6×6 input, batch 2"
				if len(d.notes) != 1 || !strings.HasPrefix(d.notes[0], want) || !strings.Contains(d.notes[0], tc.why) ||
					!strings.HasSuffix(d.notes[0], "; it runs on im2col + cuBLAS SGEMM") {
					t.Errorf("notes %q: want one line starting %q, saying %q", d.notes, want, tc.why)
				}
				if !strings.Contains(b.Describe(), "1 shapes it rejects") {
					t.Errorf("Describe() = %q: does not count the rejected shape", b.Describe())
				}
			})
		}
	}
}

// TestBackwardFallback: when only a backward pass lacks a usable
// algorithm, auto keeps the forward on cuDNN and runs the backward passes
// on im2col.
func TestBackwardFallback(t *testing.T) {
	b, f, d := newFakeDNNBackend(t, device.ConvAuto, func(d *fakeDNN) {
		d.heuristics[passBackwardFilter] = []convAlgo{{algo: 0}, {algo: 3}} // non-deterministic only
	})
	runConv(b, conv3x3)
	runConv(b, conv3x3)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	var passes [3]int
	for _, r := range d.runs {
		passes[r.pass]++
	}
	if passes != [3]int{2, 0, 0} {
		t.Errorf("cuDNN runs per pass %v, want the two forwards only", passes)
	}
	if launched(f, "qm_col2im_f32") != 2 {
		t.Errorf("%d col2im launches, want 2", launched(f, "qm_col2im_f32"))
	}
}

// TestAutoKeepsPointwiseOnGemm: in auto mode 1×1 stride-1 convolutions are
// GEMMs on the activations; --conv cudnn sends them to cuDNN.
func TestAutoKeepsPointwiseOnGemm(t *testing.T) {
	g := engine.ConvGeom{N: 2, H: 4, W: 4, C: 8, K: 6, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}
	for _, tc := range []struct {
		mode      string
		wantRuns  int
		wantGemms int
	}{{device.ConvAuto, 0, 3}, {device.ConvCudnn, 3, 0}} {
		b, f, d := newFakeDNNBackend(t, tc.mode, nil)
		runConv(b, g)
		if err := b.Err(); err != nil {
			t.Fatal(err)
		}
		if len(d.runs) != tc.wantRuns || len(f.gemms) != tc.wantGemms {
			t.Errorf("%s: %d cuDNN runs and %d GEMMs, want %d and %d", tc.mode, len(d.runs), len(f.gemms), tc.wantRuns, tc.wantGemms)
		}
	}
}

// TestDepthwiseDecision: in auto mode a depthwise shape goes to cuDNN only
// when cuDNN's measured forward beats our kernel's, timed on a fake clock.
func TestDepthwiseDecision(t *testing.T) {
	g := engine.ConvGeom{N: 2, H: 6, W: 6, C: 8, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 8}
	for _, tc := range []struct {
		name       string
		ours       time.Duration // per launch
		cudnnMs    float32
		wantCudnn  bool
		wantDirect int // qm_dwconv_f32 launches: timing plus real ones
	}{
		{"cuDNN faster", 3 * time.Millisecond, 1, true, depthwiseReps},
		{"ours faster", 200 * time.Microsecond, 1, false, depthwiseReps + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f, d := newFakeDNNBackend(t, device.ConvAuto, func(d *fakeDNN) {
				for p := range d.measured {
					d.measured[p][0].time = tc.cudnnMs
				}
			})
			// The clock advances tc.ours per launch of our kernel.
			base := time.Unix(0, 0)
			b.conv.now = func() time.Time {
				return base.Add(time.Duration(launched(f, "qm_dwconv_f32")) * tc.ours)
			}
			runConv(b, g)
			b.Conv2d(b.Zeros(engine.Float32, g.N, g.H, g.W, g.C), b.Zeros(engine.Float32, g.K, g.R, g.S, 1),
				b.Zeros(engine.Float32, g.N, g.OutH(), g.OutW(), g.K), g)
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			if got := len(d.runs) > 0; got != tc.wantCudnn {
				t.Errorf("%d cuDNN runs, want cuDNN %v", len(d.runs), tc.wantCudnn)
			}
			if tc.wantCudnn && len(d.runs) != 4 {
				t.Errorf("%d cuDNN runs, want 4 (two forwards, backward data and filter)", len(d.runs))
			}
			if n := launched(f, "qm_dwconv_f32"); n != tc.wantDirect {
				t.Errorf("%d direct launches, want %d", n, tc.wantDirect)
			}
			if !tc.wantCudnn && launched(f, "qm_dwconv_dx_f32") != 1 {
				t.Error("backward did not follow the forward's choice of our kernels")
			}
		})
	}
}

// TestConvCasesOnFakeCudnn runs every convolution case through the cuDNN
// path of the fake: operands, workspaces and descriptors checked, no
// scratch leaked.
func TestConvCasesOnFakeCudnn(t *testing.T) {
	for _, c := range convCases() {
		if !strings.HasPrefix(c.name, "Conv2d") {
			continue // ConvPerSampleSqNorm has its own kernels
		}
		t.Run(c.name, func(t *testing.T) {
			b, _, d := newFakeDNNBackend(t, device.ConvCudnn, nil)
			runCase(t, b, c)
			if len(d.runs) == 0 {
				t.Error("no cuDNN run")
			}
			if want := sizeClass(4); b.mem.live != want {
				t.Errorf("%d bytes still allocated, want %d: a scratch buffer leaked", b.mem.live, want)
			}
		})
	}
}

func TestDecodeCudnnVersion(t *testing.T) {
	for _, tc := range []struct {
		v    int
		want string
	}{{7605, "7.6.5"}, {8907, "8.9.7"}, {8100, "8.1.0"}, {90100, "9.1.0"}, {91002, "9.10.2"}} {
		if got := decodeCudnnVersion(tc.v).String(); got != tc.want {
			t.Errorf("decodeCudnnVersion(%d) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// buildStub compiles C source into a shared library in dir.
func buildStub(t *testing.T, dir, name, src string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	c := filepath.Join(dir, name+".c")
	so := filepath.Join(dir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", so, c).CombinedOutput(); err != nil {
		t.Skipf("no C compiler for the stub libraries: %v: %s", err, out)
	}
	return so
}

// TestLoadCudnnErrors: a missing, foreign, too old or partial library each
// gets a one-line reason that names it.
func TestLoadCudnnErrors(t *testing.T) {
	dir := t.TempDir()
	old := buildStub(t, dir, "libcudnn.so.7", "#include <stddef.h>\nsize_t cudnnGetVersion(void) { return 7605; }\n")
	partial := buildStub(t, dir, "libcudnn.so.9", "#include <stddef.h>\nsize_t cudnnGetVersion(void) { return 90100; }\n")
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"/nonexistent/libcudnn.so.9", "/nonexistent/libcudnn.so.8"},
			[]string{"no usable cuDNN", "QMUL_CUDNN", "/nonexistent/libcudnn.so.9, /nonexistent/libcudnn.so.8: not found"}},
		{[]string{"libc.so.6"}, []string{"libc.so.6 lacks cudnnGetVersion", "not a cuDNN library"}},
		{[]string{old}, []string{old + " is cuDNN 7.6.5, too old: need 8 or newer"}},
		{[]string{partial}, []string{partial + " lacks cudnnGetErrorString", "broken or partial cuDNN 9.1.0"}},
		{[]string{"/nonexistent/libcudnn.so.9", old}, []string{"too old", "/nonexistent/libcudnn.so.9: not found"}},
	}
	for _, tc := range tests {
		var cands []libsearch.Candidate
		for _, p := range tc.paths {
			cands = append(cands, libsearch.Candidate{Path: p, Where: "test"})
		}
		l, _, err := pickCudnn(cands, 0, nil)
		if err == nil {
			t.Errorf("pickCudnn(%q) = %v, want an error", tc.paths, l)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("pickCudnn(%q): error of several lines: %q", tc.paths, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("pickCudnn(%q): error %q does not say %q", tc.paths, err, w)
			}
		}
	}
}
