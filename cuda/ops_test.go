//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// Every op case runs on the CPU backend (the reference) and on the CUDA
// backend with the same random inputs; each output element must satisfy
//
//	|got − want| ≤ tol·max(1, |want|)          (tol·max(1, max|want|) for TF32)
//
// with NaN only where the reference has NaN (outputs start as NaN, so
// elements an op fails to write show up). Integer outputs must be equal.
// The bounds, with TF32 off unless stated:
//
//	tolExact  1e-6  Fill, Copy, Gather, GatherImages, FakeQuant, Observe,
//	                elementwise ops, activations, pooling, SGD: the same
//	                float32 operations (up to FMA contraction)
//	tolReduce 1e-5  SumSquares, Dot, RowSqNorm, BiasGrad, BatchNorm,
//	                GlobalAvgPool, losses, DoReFa, per-sample BatchNorm
//	                norms: double sums in another order, one float32
//	                rounding
//	tolGemm   1e-4  Gemm, Conv2d, Conv2dBackward, per-sample conv norms:
//	                float32 sums of up to a few hundred products in
//	                another order
//	tolTF32   2e-2  Gemm and Conv2d with TF32 on (10-bit mantissas),
//	                relative to the output's largest magnitude
//	training  1e-3  losses and parameters after three SGD steps of
//	                smallcnn (train_test.go)
const (
	tolExact  = 1e-6
	tolReduce = 1e-5
	tolGemm   = 1e-4
	tolTF32   = 2e-2
)

// opCase is one op invocation, run identically on any backend.
type opCase struct {
	name string
	tol  float64
	// tf32 runs the case with TF32 on and measures errors against the
	// output's largest magnitude.
	tf32 bool
	run  func(e *env)
}

// env builds a case's operands on one backend from a seeded generator and
// collects its outputs.
type env struct {
	b       engine.Backend
	r       *rand.Rand
	tensors []*engine.Tensor
	outs    []output
}

// newEnv returns an env on b whose draws come from a generator seeded with
// seed: every env has one, since any case may draw.
func newEnv(b engine.Backend, seed uint64) *env {
	return &env{b: b, r: rand.New(rand.NewPCG(seed, 0x6f7073))}
}

// output is one downloaded result.
type output struct {
	name string
	f    []float32
	i    []int32
}

func (e *env) keep(t *engine.Tensor) *engine.Tensor {
	e.tensors = append(e.tensors, t)
	return t
}

// normals returns n draws of scale·N(0, 1).
func (e *env) normals(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(scale * e.r.NormFloat64())
	}
	return v
}

func (e *env) f32(v []float32, shape ...int) *engine.Tensor {
	t := e.keep(e.b.Alloc(engine.Float32, shape...))
	e.b.Upload(t, v)
	return t
}

// randn is a Float32 tensor of N(0, 1) draws.
func (e *env) randn(shape ...int) *engine.Tensor {
	return e.f32(e.normals(engine.Numel(shape), 1), shape...)
}

func (e *env) i32(v []int32, shape ...int) *engine.Tensor {
	t := e.keep(e.b.Alloc(engine.Int32, shape...))
	e.b.Upload(t, v)
	return t
}

func (e *env) u8(v []uint8, shape ...int) *engine.Tensor {
	t := e.keep(e.b.Alloc(engine.Uint8, shape...))
	e.b.Upload(t, v)
	return t
}

// ints returns n draws from [lo, hi).
func (e *env) ints(n, lo, hi int) []int32 {
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(lo + e.r.IntN(hi-lo))
	}
	return v
}

// poison is a tensor every element of which is NaN (Float32) or −777.
func (e *env) poison(dt engine.DType, shape ...int) *engine.Tensor {
	t := e.keep(e.b.Alloc(dt, shape...))
	if dt == engine.Float32 {
		e.b.Fill(t, math.NaN())
	} else {
		e.b.Fill(t, -777)
	}
	return t
}

// out downloads t as a result named name.
func (e *env) out(name string, t *engine.Tensor) {
	o := output{name: name}
	switch t.DType {
	case engine.Float32:
		o.f = make([]float32, t.Numel())
		e.b.Download(t, o.f)
	case engine.Int32:
		o.i = make([]int32, t.Numel())
		e.b.Download(t, o.i)
	case engine.Uint8:
		u := make([]uint8, t.Numel())
		e.b.Download(t, u)
		o.i = make([]int32, len(u))
		for j, v := range u {
			o.i[j] = int32(v)
		}
	}
	e.outs = append(e.outs, o)
}

// runCase runs c on b and returns its outputs.
func runCase(t *testing.T, b engine.Backend, c opCase) []output {
	t.Helper()
	if sw, ok := b.(engine.TF32Switch); ok && c.tf32 {
		if err := sw.SetTF32(true); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := sw.SetTF32(false); err != nil {
				t.Fatal(err)
			}
		}()
	}
	e := newEnv(b, uint64(len(c.name)))
	c.run(e)
	for _, tt := range e.tensors {
		b.Free(tt)
	}
	if err := b.Err(); err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	return e.outs
}

// compareOutputs checks got against want within c's tolerance.
func compareOutputs(t *testing.T, c opCase, want, got []output) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		for i := range w.i {
			if g.i[i] != w.i[i] {
				t.Errorf("%s[%d] = %d, want %d", w.name, i, g.i[i], w.i[i])
				break
			}
		}
		if len(w.f) == 0 {
			continue
		}
		scale := 1.0
		if c.tf32 {
			for _, v := range w.f {
				scale = math.Max(scale, math.Abs(float64(v)))
			}
		}
		worst, at := 0.0, -1
		for i := range w.f {
			wv, gv := float64(w.f[i]), float64(g.f[i])
			if math.IsNaN(wv) || math.IsInf(wv, 0) {
				if !(math.IsNaN(wv) && math.IsNaN(gv)) && wv != gv {
					t.Errorf("%s[%d] = %g, want %g", w.name, i, gv, wv)
				}
				continue
			}
			d := math.Abs(gv-wv) / math.Max(scale, math.Abs(wv))
			if math.IsNaN(gv) {
				d = math.Inf(1)
			}
			if d > worst {
				worst, at = d, i
			}
		}
		if worst > c.tol {
			t.Errorf("%s: relative error %.3g at [%d] (got %g, want %g), bound %g", w.name, worst, at, g.f[at], w.f[at], c.tol)
		}
	}
}

// theGPU is the backend the GPU tests share, opened once with the
// settings of the environment (device.OptionsFromEnv: QMUL_CONV,
// QMUL_CUDA_EXACT_ALLOC, …), its notices on stderr.
var theGPU = sync.OnceValues(func() (*Backend, error) {
	if _, err := (provider{}).Discover(); err != nil {
		return nil, errNoGPU{err}
	}
	opts, err := device.OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	opts.Note = func(s string) { fmt.Fprintln(os.Stderr, "cuda.test: "+s) }
	return Open(0, opts)
})

// errNoGPU says why no GPU test can run.
type errNoGPU struct{ err error }

func (e errNoGPU) Error() string { return e.err.Error() }

// gpuBackend returns the shared CUDA backend with TF32 off, skipping the
// test when there is no usable GPU.
func gpuBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := theGPU()
	if _, ok := err.(errNoGPU); ok {
		t.Skip("no CUDA GPU: " + err.Error())
	}
	if err != nil {
		t.Fatalf("a GPU is present but the backend does not open: %v", err)
	}
	if err := b.SetTF32(false); err != nil {
		t.Fatal(err)
	}
	return b
}

// cpuReference is the CPU backend the GPU is measured against, with every
// convolution im2col + GEMM: its Winograd path rounds more
// (docs/performance.md), more than these comparisons allow.
func cpuReference(t *testing.T) *cpu.Backend {
	ref := cpu.New(0)
	if err := ref.SetConv("im2col"); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestOpsMatchCPU(t *testing.T) {
	g := gpuBackend(t)
	ref := cpuReference(t)
	t.Logf("%s", g.Describe())
	for _, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			want := runCase(t, ref, c)
			got := runCase(t, g, c)
			compareOutputs(t, c, want, got)
		})
	}
}

// TestOpsOnFakeGPU runs every case on the fake executor: no kernel runs,
// but every launch and GEMM is checked (see fake_test.go), and every op's
// Go code runs.
func TestOpsOnFakeGPU(t *testing.T) {
	for _, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			b, f := newFakeBackend(t)
			runCase(t, b, c)
			if len(f.launches)+len(f.gemms) == 0 && c.tol != 0 {
				t.Error("no launch and no GEMM")
			}
			// Every tensor is freed: only the status word is left.
			if want := sizeClass(4); b.mem.live != want {
				t.Errorf("%d bytes still allocated, want %d: a scratch buffer leaked", b.mem.live, want)
			}
		})
	}
}

// opCases lists the cases of every op.
func opCases() []opCase {
	var cs []opCase
	for _, f := range []func() []opCase{memoryCases, elementwiseCases, gemmCases, convCases, batchNormCases,
		activationCases, poolCases, lossCases, sgdCases, gatherCases, quantCases} {
		cs = append(cs, f()...)
	}
	return cs
}

func memoryCases() []opCase {
	return []opCase{
		{name: "Fill/F32", tol: 0, run: func(e *env) {
			x := e.poison(engine.Float32, 37)
			e.b.Fill(x, 1.5)
			e.out("x", x)
		}},
		{name: "Fill/I32-U8", tol: 0, run: func(e *env) {
			x, y := e.poison(engine.Int32, 5, 3), e.keep(e.b.Alloc(engine.Uint8, 11))
			e.b.Fill(x, -3)
			e.b.Fill(y, 7)
			e.out("x", x)
			e.out("y", y)
		}},
		{name: "Copy/view", tol: 0, run: func(e *env) {
			src := e.randn(10, 7)
			dst := e.poison(engine.Float32, 4, 7)
			e.b.Copy(dst, src.Slice(3, 7))
			e.out("dst", dst)
			whole := e.poison(engine.Float32, 10, 7)
			e.b.Copy(whole.Slice(6, 10), dst)
			e.out("whole", whole)
		}},
		{name: "Upload/view", tol: 0, run: func(e *env) {
			x := e.poison(engine.Float32, 6, 5)
			e.b.Upload(x.Slice(2, 4), e.normals(10, 1))
			e.out("x", x)
			u := e.u8([]uint8{1, 2, 3, 250, 251, 252}, 3, 2)
			e.out("u", u.Slice(1, 3))
		}},
		{name: "Gather", tol: 0, run: func(e *env) {
			idx := e.i32([]int32{3, 0, 8, 3, 5, 5}, 6)
			f := e.randn(9, 5)
			df := e.poison(engine.Float32, 6, 5)
			e.b.Gather(df, f, idx)
			e.out("f32", df)
			i := e.i32(e.ints(9*2, -100, 100), 9, 2)
			di := e.poison(engine.Int32, 6, 2)
			e.b.Gather(di, i, idx)
			e.out("i32", di)
			u := e.u8([]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26}, 9, 3)
			du := e.keep(e.b.Alloc(engine.Uint8, 6, 3))
			e.b.Fill(du, 99)
			e.b.Gather(du, u, idx)
			e.out("u8", du)
		}},
	}
}

func elementwiseCases() []opCase {
	return []opCase{
		{name: "Scale-Axpy-Add", tol: tolExact, run: func(e *env) {
			x, y := e.randn(1001), e.randn(1001)
			e.b.Scale(x, -0.75)
			e.out("scale", x)
			e.b.Axpy(1.25, x, y)
			e.out("axpy", y)
			d := e.poison(engine.Float32, 1001)
			e.b.Add(d, x, y)
			e.out("add", d)
			e.b.Add(x, x, y) // aliasing
			e.out("add alias", x)
		}},
		{name: "AddSign-AddSqrt", tol: tolExact, run: func(e *env) {
			xv := e.normals(500, 1)
			for i := 0; i < len(xv); i += 7 {
				xv[i] = 0
			}
			x, y := e.f32(xv, 500), e.randn(500)
			e.b.AddSign(0.3, x, y)
			e.out("sign", y)
			sv := e.normals(500, 3)
			for i := range sv {
				sv[i] = float32(math.Abs(float64(sv[i])))
			}
			e.b.AddSqrt(y, e.f32(sv, 500))
			e.out("sqrt", y)
		}},
		{name: "SumSquares", tol: tolReduce, run: func(e *env) {
			var ts []*engine.Tensor
			for i := range 200 { // two tables' worth
				n := e.r.IntN(3000)
				if i == 17 {
					n = 100000
				}
				if i == 3 {
					n = 0
				}
				ts = append(ts, e.randn(n))
			}
			out := e.poison(engine.Float32, len(ts))
			e.b.SumSquares(ts, out)
			e.out("out", out)
		}},
		{name: "Dot", tol: tolReduce, run: func(e *env) {
			var as, bs []*engine.Tensor
			for _, n := range []int{1, 31, 4097, 70000, 0} {
				as, bs = append(as, e.randn(n)), append(bs, e.randn(n))
			}
			out := e.poison(engine.Float32, len(as))
			e.b.Dot(as, bs, out)
			e.out("out", out)
		}},
		{name: "RowSqNorm", tol: tolReduce, run: func(e *env) {
			for _, shape := range [][]int{{17, 300}, {5, 1}, {3, 4, 5, 6}} {
				x := e.randn(shape...)
				out := e.poison(engine.Float32, shape[0])
				e.b.RowSqNorm(x, out)
				e.out(fmt.Sprint(shape), out)
			}
		}},
		{name: "AddBias-BiasGrad", tol: tolReduce, run: func(e *env) {
			for _, shape := range [][]int{{13, 7}, {3, 4, 4, 5}, {3000, 33}} {
				c := shape[len(shape)-1]
				y, bias := e.randn(shape...), e.randn(c)
				e.b.AddBias(y, bias)
				e.out("y", y)
				db := e.randn(c)
				e.b.BiasGrad(y, db)
				e.out("db", db)
			}
		}},
	}
}

func gemmCases() []opCase {
	var cs []opCase
	for _, dims := range [][3]int{{7, 5, 3}, {33, 17, 65}, {1, 40, 9}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				m, n, k := dims[0], dims[1], dims[2]
				cs = append(cs, opCase{name: fmt.Sprintf("Gemm/%dx%dx%d/%v/%v", m, n, k, ta, tb), tol: tolGemm,
					run: func(e *env) {
						a, b := e.randn(m*k), e.randn(k*n)
						c := e.poison(engine.Float32, m*n)
						e.b.Gemm(ta, tb, m, n, k, 1.3, a, b, 0, c)
						e.out("beta 0", c)
						e.b.Gemm(ta, tb, m, n, k, -0.5, a, b, 0.5, c)
						e.out("beta 0.5", c)
					}})
			}
		}
	}
	cs = append(cs, opCase{name: "Gemm/TF32", tol: tolTF32, tf32: true, run: func(e *env) {
		a, b := e.randn(64*200), e.randn(200*48)
		c := e.poison(engine.Float32, 64*48)
		e.b.Gemm(false, true, 64, 48, 200, 1, a, b, 0, c)
		e.out("c", c)
	}})
	return cs
}

func convCases() []opCase {
	geoms := []struct {
		name    string
		g       engine.ConvGeom
		chunked bool // with a column buffer of a few KiB: many chunks
		tf32    bool
	}{
		{name: "3x3", g: engine.ConvGeom{N: 3, H: 8, W: 7, C: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}},
		{name: "3x3s2", g: engine.ConvGeom{N: 5, H: 9, W: 9, C: 3, K: 4, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1}},
		{name: "stem7x7s2", g: engine.ConvGeom{N: 2, H: 32, W: 30, C: 3, K: 16, R: 7, S: 7, Stride: 2, Pad: 3, Groups: 1}},
		{name: "pointwise", g: engine.ConvGeom{N: 4, H: 6, W: 6, C: 40, K: 33, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}},
		{name: "linear", g: engine.ConvGeom{N: 5, H: 1, W: 1, C: 20, K: 7, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}},
		{name: "1x1s2", g: engine.ConvGeom{N: 4, H: 6, W: 6, C: 8, K: 4, R: 1, S: 1, Stride: 2, Pad: 0, Groups: 1}},
		{name: "grouped", g: engine.ConvGeom{N: 2, H: 5, W: 6, C: 6, K: 9, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 3}},
		{name: "grouped-wide", g: engine.ConvGeom{N: 2, H: 7, W: 7, C: 64, K: 96, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 2}},
		{name: "depthwise-s2", g: engine.ConvGeom{N: 3, H: 7, W: 5, C: 8, K: 8, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 8}},
		{name: "depthwise-40", g: engine.ConvGeom{N: 2, H: 9, W: 9, C: 40, K: 40, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 40}},
		{name: "batch1-odd", g: engine.ConvGeom{N: 1, H: 13, W: 11, C: 37, K: 19, R: 3, S: 5, Stride: 1, Pad: 2, Groups: 1}},
		{name: "chunked", g: engine.ConvGeom{N: 70, H: 4, W: 4, C: 16, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, chunked: true},
		{name: "chunked-grouped", g: engine.ConvGeom{N: 9, H: 6, W: 5, C: 12, K: 8, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 2}, chunked: true},
		{name: "TF32", g: engine.ConvGeom{N: 4, H: 16, W: 16, C: 32, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, tf32: true},
	}
	var cs []opCase
	for _, gc := range geoms {
		g := gc.g
		tol := tolGemm
		if gc.tf32 {
			tol = tolTF32
		}
		withChunks := func(run func(e *env)) func(e *env) {
			if !gc.chunked {
				return run
			}
			return func(e *env) {
				saved := maxColBytes
				maxColBytes = 16 << 10
				defer func() { maxColBytes = saved }()
				run(e)
			}
		}
		operands := func(e *env) (x, w *engine.Tensor) {
			return e.randn(g.N, g.H, g.W, g.C), e.randn(g.K, g.R, g.S, g.C/g.Groups)
		}
		cs = append(cs,
			opCase{name: "Conv2d/" + gc.name, tol: tol, tf32: gc.tf32, run: withChunks(func(e *env) {
				x, w := operands(e)
				y := e.poison(engine.Float32, g.N, g.OutH(), g.OutW(), g.K)
				e.b.Conv2d(x, w, y, g)
				e.out("y", y)
			})},
			opCase{name: "Conv2dBackward/" + gc.name, tol: tol, tf32: gc.tf32, run: withChunks(func(e *env) {
				x, w := operands(e)
				dy := e.randn(g.N, g.OutH(), g.OutW(), g.K)
				dx := e.poison(engine.Float32, g.N, g.H, g.W, g.C)
				dw := e.randn(w.Shape...) // accumulated into
				e.b.Conv2dBackward(x, w, dy, dx, dw, g)
				e.out("dx", dx)
				e.out("dw", dw)
				e.b.Conv2dBackward(x, w, dy, nil, dw, g)
				e.out("dw without dx", dw)
			})},
			opCase{name: "ConvPerSampleSqNorm/" + gc.name, tol: tol, tf32: gc.tf32, run: withChunks(func(e *env) {
				x, _ := operands(e)
				dy := e.randn(g.N, g.OutH(), g.OutW(), g.K)
				out := e.poison(engine.Float32, g.N)
				e.b.ConvPerSampleSqNorm(x, dy, out, g)
				e.out("out", out)
			})},
		)
	}
	return cs
}

func batchNormCases() []opCase {
	configs := []struct {
		shape []int
		acts  []engine.Activation
	}{
		{[]int{50, 3}, []engine.Activation{0, engine.ReLU, engine.ReLU6}},
		{[]int{4, 5, 6, 37}, []engine.Activation{0, engine.ReLU6}},
		{[]int{70000, 16}, []engine.Activation{0, engine.ReLU}},
	}
	var cs []opCase
	for _, cfg := range configs {
		shape := cfg.shape
		c := shape[len(shape)-1]
		for _, act := range cfg.acts {
			for _, train := range []bool{true, false} {
				// operands draws x with a per-channel offset, and the
				// per-channel parameters and statistics; γ is wide enough
				// for a fused ReLU6 to clip at 6.
				operands := func(e *env) engine.BatchNormArgs {
					n := engine.Numel(shape)
					xv := e.normals(n, 2)
					for i := range xv {
						xv[i] += float32(i%c) - 3
					}
					rv := e.normals(c, 1)
					for i := range rv {
						rv[i] = 0.5 + float32(math.Abs(float64(rv[i])))
					}
					return engine.BatchNormArgs{X: e.f32(xv, shape...), Gamma: e.f32(e.normals(c, 3), c), Beta: e.randn(c),
						RunMean: e.randn(c), RunVar: e.f32(rv, c), Mean: e.poison(engine.Float32, c),
						InvStd: e.poison(engine.Float32, c), Train: train, Momentum: 0.1, Eps: 1e-5, Act: act,
						Y: e.poison(engine.Float32, shape...)}
				}
				name := fmt.Sprintf("%v/train=%v/act=%d", shape, train, act)
				cs = append(cs,
					opCase{name: "BatchNorm/" + name, tol: tolReduce, run: func(e *env) {
						a := operands(e)
						e.b.BatchNorm(a)
						for _, o := range []struct {
							name string
							t    *engine.Tensor
						}{{"y", a.Y}, {"mean", a.Mean}, {"invstd", a.InvStd}, {"running mean", a.RunMean}, {"running var", a.RunVar}} {
							e.out(o.name, o.t)
						}
					}},
					opCase{name: "BatchNormBackward/" + name, tol: tolReduce, run: func(e *env) {
						a := operands(e)
						e.b.BatchNorm(a)
						a.DY, a.DX = e.randn(shape...), e.poison(engine.Float32, shape...)
						a.DGamma, a.DBeta = e.randn(c), e.randn(c)
						e.b.BatchNormBackward(a)
						e.out("dx", a.DX)
						e.out("dgamma", a.DGamma)
						e.out("dbeta", a.DBeta)
						a.DX = nil
						e.b.BatchNormBackward(a)
						e.out("dgamma without dx", a.DGamma)
						if shape[0] > 1000 {
							return // per-sample norms of 70000 one-row samples add nothing
						}
						n := shape[0]
						og, ob := e.poison(engine.Float32, n), e.poison(engine.Float32, n)
						e.b.BatchNormPerSampleSqNorm(a, n, og, ob)
						e.out("per-sample dgamma", og)
						e.out("per-sample dbeta", ob)
					}},
				)
			}
		}
	}
	return cs
}

func activationCases() []opCase {
	shape := []int{7, 3, 33}
	n := engine.Numel(shape)
	var cs []opCase
	for _, act := range []engine.Activation{engine.ReLU, engine.ReLU6} {
		cs = append(cs, opCase{name: fmt.Sprintf("Activate/%d", act), tol: tolExact, run: func(e *env) {
			x := e.f32(e.normals(n, 4), shape...)
			y := e.poison(engine.Float32, shape...)
			e.b.Activate(act, x, nil, y)
			e.out("y", y)
			dy := e.randn(shape...)
			dx := e.poison(engine.Float32, shape...)
			e.b.ActivateBackward(act, y, nil, dy, dx, nil)
			e.out("dx", dx)
			e.b.ActivateBackward(act, y, nil, dy, dy, nil) // in place
			e.out("dx in place", dy)
			e.b.Activate(act, x, nil, x)
			e.out("y in place", x)
		}})
	}
	for _, slopes := range []int{1, 33} {
		cs = append(cs, opCase{name: fmt.Sprintf("Activate/PReLU/%d", slopes), tol: tolReduce, run: func(e *env) {
			x, alpha := e.randn(shape...), e.f32(e.normals(slopes, 0.3), slopes)
			y := e.poison(engine.Float32, shape...)
			e.b.Activate(engine.PReLU, x, alpha, y)
			e.out("y", y)
			dy, dalpha := e.randn(shape...), e.randn(slopes)
			dx := e.poison(engine.Float32, shape...)
			e.b.ActivateBackward(engine.PReLU, x, alpha, dy, dx, dalpha)
			e.out("dx", dx)
			e.out("dalpha", dalpha)
			e.b.ActivateBackward(engine.PReLU, x, alpha, dy, dy, nil)
			e.out("dx in place", dy)
		}})
	}
	return cs
}

func poolCases() []opCase {
	geoms := []struct {
		kind engine.PoolKind
		g    engine.PoolGeom
	}{
		{engine.MaxPool, engine.PoolGeom{N: 2, H: 9, W: 9, C: 5, Kernel: 3, Stride: 2, Pad: 1}},
		{engine.MaxPool, engine.PoolGeom{N: 3, H: 8, W: 8, C: 4, Kernel: 2, Stride: 2}},
		{engine.MaxPool, engine.PoolGeom{N: 1, H: 16, W: 15, C: 64, Kernel: 3, Stride: 2, Pad: 1}},
		{engine.AvgPool, engine.PoolGeom{N: 2, H: 6, W: 7, C: 3, Kernel: 3, Stride: 1, Pad: 1}},
		{engine.AvgPool, engine.PoolGeom{N: 1, H: 4, W: 4, C: 40, Kernel: 2, Stride: 2}},
	}
	var cs []opCase
	for _, pc := range geoms {
		g := pc.g
		cs = append(cs, opCase{name: fmt.Sprintf("Pool2d/%d/%+v", pc.kind, g), tol: tolExact, run: func(e *env) {
			x := e.randn(g.N, g.H, g.W, g.C)
			y := e.poison(engine.Float32, g.N, g.OutH(), g.OutW(), g.C)
			var am *engine.Tensor
			if pc.kind == engine.MaxPool {
				am = e.poison(engine.Int32, y.Shape...)
			}
			e.b.Pool2d(pc.kind, x, y, am, g)
			e.out("y", y)
			if am != nil {
				e.out("argmax", am)
			}
			dy := e.randn(y.Shape...)
			dx := e.poison(engine.Float32, x.Shape...)
			e.b.Pool2dBackward(pc.kind, dy, am, dx, g)
			e.out("dx", dx)
		}})
	}
	cs = append(cs, opCase{name: "GlobalAvgPool", tol: tolReduce, run: func(e *env) {
		x := e.randn(3, 5, 7, 6)
		y := e.poison(engine.Float32, 3, 6)
		e.b.GlobalAvgPool(x, y)
		e.out("y", y)
		dx := e.poison(engine.Float32, 3, 5, 7, 6)
		e.b.GlobalAvgPoolBackward(y, dx)
		e.out("dx", dx)
	}})
	return cs
}

func lossCases() []opCase {
	dims := []struct {
		n, k     int
		weighted bool
	}{{1, 10, false}, {257, 1000, true}, {64, 3, true}, {40, 1, false}}
	var cs []opCase
	for _, d := range dims {
		n, k := d.n, d.k
		cs = append(cs, opCase{name: fmt.Sprintf("Loss/%dx%d/weighted=%v", n, k, d.weighted), tol: tolReduce, run: func(e *env) {
			logits := e.f32(e.normals(n*k, 3), n, k)
			labels := e.i32(e.ints(n, 0, k), n)
			var weights *engine.Tensor
			if d.weighted {
				weights = e.randn(n)
			}
			a := engine.LossArgs{Logits: logits, Labels: labels, Weights: weights, Scale: 1 / float64(n),
				DLogits: e.poison(engine.Float32, n, k), Loss: e.poison(engine.Float32, n), Pred: e.poison(engine.Int32, n),
				Conf: e.poison(engine.Float32, n), Entropy: e.poison(engine.Float32, n)}
			e.b.SoftmaxCrossEntropy(a)
			e.out("dlogits", a.DLogits)
			e.out("loss", a.Loss)
			e.out("pred", a.Pred)
			e.out("conf", a.Conf)
			e.out("entropy", a.Entropy)
			e.b.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: labels, Loss: a.Loss})
			e.out("loss alone", a.Loss)
			ent := engine.LossArgs{Logits: logits, Weights: weights, Scale: 0.5,
				DLogits: e.poison(engine.Float32, n, k), Entropy: e.poison(engine.Float32, n)}
			e.b.SoftmaxEntropy(ent)
			e.out("entropy dlogits", ent.DLogits)
			e.out("entropy alone", ent.Entropy)
			sim := e.poison(engine.Int32, n)
			e.b.SimilarLabels(logits, labels, sim)
			e.out("similar", sim)
		}})
	}
	return cs
}

func sgdCases() []opCase {
	configs := []struct {
		momentum, wd, gs float64
		nesterov, buf    bool
		mask             bool
	}{
		{0.9, 5e-4, 1, false, true, true},
		{0.9, 5e-4, 0.5, true, true, false},
		{0, 1e-2, 1, false, false, true},
		{0, 0, 2, false, true, false}, // a buffer but no momentum: untouched
	}
	var cs []opCase
	for _, c := range configs {
		cs = append(cs, opCase{name: fmt.Sprintf("SGD/%+v", c), tol: tolExact, run: func(e *env) {
			n := 1001
			a := engine.SGDArgs{Param: e.randn(n), Grad: e.randn(n), LR: 0.1, Momentum: c.momentum,
				WeightDecay: c.wd, GradScale: c.gs, Nesterov: c.nesterov}
			if c.buf {
				a.Buf = e.randn(n)
			}
			if c.mask {
				mv := make([]float32, n)
				for i := range mv {
					mv[i] = float32(e.r.IntN(2))
				}
				a.Mask = e.f32(mv, n)
			}
			for range 3 {
				e.b.SGD(a)
			}
			e.out("param", a.Param)
			if a.Buf != nil {
				e.out("buf", a.Buf)
			}
		}})
	}
	return cs
}

func gatherCases() []opCase {
	const n, h, w, c = 10, 6, 5, 3
	return []opCase{
		{name: "GatherImages/augmented", tol: tolExact, run: func(e *env) {
			src := make([]uint8, n*h*w*c)
			for i := range src {
				src[i] = uint8(e.r.IntN(256))
			}
			st := e.u8(src, n, h, w, c)
			const pad = 2
			idx := e.i32([]int32{3, 0, 9, 3}, 4)
			crop := e.i32(e.ints(8, 0, 2*pad+1), 4, 2)
			flip := e.i32([]int32{0, 1, 1, 0}, 4)
			out := e.poison(engine.Float32, 4, h, w, c)
			e.b.GatherImages(engine.GatherArgs{Src: st, Index: idx, Crop: crop, Flip: flip, Pad: pad,
				Mean: []float32{0.49, 0.48, 0.45}, Std: []float32{0.25, 0.24, 0.26}, Out: out})
			e.out("out", out)
			plain := e.poison(engine.Float32, 4, h, w, c)
			e.b.GatherImages(engine.GatherArgs{Src: st, Index: idx, Mean: []float32{0.5, 0.5, 0.5},
				Std: []float32{0.2, 0.3, 0.4}, Out: plain})
			e.out("plain", plain)
		}},
	}
}

func quantCases() []opCase {
	var cs []opCase
	for _, perChannel := range []bool{false, true} {
		ch := 1
		if perChannel {
			ch = 6
		}
		shape := []int{6, 3, 3, 5}
		cs = append(cs, opCase{name: fmt.Sprintf("FakeQuant/channels=%d", ch), tol: tolReduce, run: func(e *env) {
			x := e.randn(shape...)
			sv := e.normals(ch, 0.05)
			for i := range sv {
				sv[i] = 0.1 + float32(math.Abs(float64(sv[i])))
			}
			scale := e.f32(sv, ch)
			var zp *engine.Tensor
			if perChannel {
				zp = e.f32([]float32{0, 3, -2, 1, 0, 7}, ch)
			}
			a := engine.FakeQuantArgs{X: x, Y: e.poison(engine.Float32, shape...), Scale: scale, ZeroPoint: zp,
				ScaleMul: 1, Lo: -8, Hi: 7}
			e.b.FakeQuant(a)
			e.out("y", a.Y)
			a.DY, a.DX, a.DScale = e.randn(shape...), e.poison(engine.Float32, shape...), e.randn(ch)
			a.GradScale, a.CInside, a.CAbove, a.CBelow = 0.01, 1, 7, -8
			e.b.FakeQuantBackward(a)
			e.out("dx", a.DX)
			e.out("dscale", a.DScale)
			a.Accumulate, a.CInside, a.CAbove, a.CBelow = true, 0, 1, 0
			e.b.FakeQuantBackward(a)
			e.out("dx accumulated", a.DX)
			e.out("dscale PACT", a.DScale)
			a.DX = nil
			e.b.FakeQuantBackward(a)
			e.out("dscale without dx", a.DScale)
		}})
		for _, symmetric := range []bool{false, true} {
			cs = append(cs, opCase{name: fmt.Sprintf("Observe/channels=%d/symmetric=%v", ch, symmetric), tol: tolExact,
				run: func(e *env) {
					lo, hi := 0, 255
					if symmetric {
						lo, hi = -127, 127
					}
					mn, mx := e.f32(e.normals(ch, 1), ch), e.f32(e.normals(ch, 1), ch)
					a := engine.ObserveArgs{X: e.randn(shape...), Min: mn, Max: mx, Scale: e.poison(engine.Float32, ch),
						ZeroPoint: e.poison(engine.Float32, ch), Update: true, Count: 0, Momentum: 0.1, Symmetric: symmetric,
						Lo: lo, Hi: hi}
					for i, count := range []int64{0, 3, 4} {
						a.Count, a.Update = count, i < 2
						a.X = e.randn(shape...)
						e.b.Observe(a)
						for _, t := range []*engine.Tensor{a.Min, a.Max, a.Scale, a.ZeroPoint} {
							e.out(fmt.Sprint("step ", i), t)
						}
					}
				}})
		}
	}
	for _, bits := range []int{2, 4} {
		cs = append(cs, opCase{name: fmt.Sprintf("DoReFa/%d", bits), tol: tolReduce, run: func(e *env) {
			shape := []int{16, 3, 3, 8}
			w := e.f32(e.normals(engine.Numel(shape), 0.5), shape...)
			y := e.poison(engine.Float32, shape...)
			e.b.DoReFaWeights(engine.DoReFaArgs{W: w, Y: y, Bits: bits})
			e.out("y", y)
			dw := e.randn(shape...)
			e.b.DoReFaWeightsBackward(engine.DoReFaArgs{W: w, DY: e.randn(shape...), DW: dw, Bits: bits})
			e.out("dw", dw)
		}})
	}
	return cs
}
