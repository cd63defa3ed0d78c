// Command convmodel writes the traffic and launch model of docs/performance.md:
// for training steps of ResNet-18 (CIFAR stem) and MobileNetV2 on 32×32×3
// inputs, float and LSQ W4A4, at batch 64 and 256, the bytes moved, the
// FLOPs and the launches per op family on the two GPU convolution paths
// (im2col + SGEMM, and cuDNN's implicit GEMM), and the time they imply on
// an H200 at its published HBM bandwidth and dense TF32 rate.
//
//	go run ./bench/convmodel > model.md
//
// The layer shapes are not typed in: one training step at batch 2 runs on
// the CPU backend behind a recorder that notes every op's operands, and
// each op's cost is scaled to the batch (every term is linear in it,
// except the weights', which are counted once). The costs are ideal: each tensor an op reads or
// writes crosses DRAM once (a lower bound: real kernels re-read tiles),
// and time is the roofline max(bytes/bandwidth, FLOPs/peak) per op,
// summed, with no launch gaps.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// H200 SXM, as NVIDIA publishes it: 4.8 TB/s HBM3e; TF32 tensor cores
// 989 TFLOPS with structured sparsity, so 494.5 dense; FP32 67 TFLOPS.
const (
	bandwidth = 4.8e12   // bytes/s
	tf32Peak  = 494.5e12 // FLOP/s, dense
	fp32Peak  = 67e12    // FLOP/s, CUDA cores (elementwise ops, direct kernels)
)

// maxColBytes mirrors cuda/conv.go: the column buffers of one im2col
// convolution stay within it, in chunks of output pixels.
const maxColBytes = 256 << 20

// cost is what one op, or a sum of ops, costs.
type cost struct {
	bytes, flops float64
	launches     int
	seconds      float64
}

func (c *cost) add(o cost) {
	c.bytes += o.bytes
	c.flops += o.flops
	c.launches += o.launches
	c.seconds += o.seconds
}

// op makes the cost of one op from its traffic in floats, its FLOPs, its
// launches and the rate its arithmetic runs at.
func op(floats, flops float64, launches int, peak float64) cost {
	b := 4 * floats
	return cost{bytes: b, flops: flops, launches: launches, seconds: max(b/bandwidth, flops/peak)}
}

// conv is one recorded convolution call.
type conv struct {
	g        engine.ConvGeom
	backward bool
	dx       bool
}

// recorder is a backend that notes the operands of the ops the model
// costs and passes every call on to the CPU backend.
type recorder struct {
	engine.Backend
	convs []conv
	// elems sums, per op family, the elements its ops touch per sample
	// (recorded at batch n) weighted by the passes over them.
	elems map[string]float64
	// calls counts the ops per family: at least one launch each.
	calls map[string]int
	// params sums the elements of per-parameter ops (SGD), which do not
	// scale with the batch.
	params float64
	// weights sums the elements the weight quantizers touch per step.
	weights float64
	n       int
}

func (r *recorder) note(family string, passes float64, t *engine.Tensor) {
	r.elems[family] += passes * float64(t.Numel()) / float64(r.n)
	r.calls[family]++
}

func (r *recorder) Conv2d(x, w, y *engine.Tensor, g engine.ConvGeom) {
	r.convs = append(r.convs, conv{g: g})
	r.Backend.Conv2d(x, w, y, g)
}

func (r *recorder) Conv2dBackward(x, w, dy, dx, dw *engine.Tensor, g engine.ConvGeom) {
	r.convs = append(r.convs, conv{g: g, backward: true, dx: dx != nil})
	r.Backend.Conv2dBackward(x, w, dy, dx, dw, g)
}

// BatchNorm in training reads x twice (statistics, then normalise) and
// writes y.
func (r *recorder) BatchNorm(a engine.BatchNormArgs) {
	r.note("BatchNorm (+act)", 3, a.X)
	r.Backend.BatchNorm(a)
}

// BatchNormBackward reads x and dy twice (sums, then dx) and writes dx.
func (r *recorder) BatchNormBackward(a engine.BatchNormArgs) {
	r.note("BatchNorm (+act)", 5, a.X)
	r.Backend.BatchNormBackward(a)
}

func (r *recorder) Activate(act engine.Activation, x, alpha, y *engine.Tensor) {
	r.note("activations, pooling, adds", 2, x)
	r.Backend.Activate(act, x, alpha, y)
}

func (r *recorder) ActivateBackward(act engine.Activation, x, alpha, dy, dx, dalpha *engine.Tensor) {
	r.note("activations, pooling, adds", 3, x)
	r.Backend.ActivateBackward(act, x, alpha, dy, dx, dalpha)
}

func (r *recorder) Add(dst, a, b *engine.Tensor) {
	r.note("activations, pooling, adds", 3, dst)
	r.Backend.Add(dst, a, b)
}

func (r *recorder) GlobalAvgPool(x, y *engine.Tensor) {
	r.note("activations, pooling, adds", 1, x)
	r.Backend.GlobalAvgPool(x, y)
}

func (r *recorder) GlobalAvgPoolBackward(dy, dx *engine.Tensor) {
	r.note("activations, pooling, adds", 1, dx)
	r.Backend.GlobalAvgPoolBackward(dy, dx)
}

// noteQuant notes a fake quantizer's passes over x: per sample for
// activations (whose leading dimension is the batch), once per step for
// weights.
func (r *recorder) noteQuant(passes float64, x *engine.Tensor) {
	if x.Shape[0] == r.n {
		r.note("fake quantization", passes, x)
		return
	}
	r.weights += passes * float64(x.Numel())
	r.calls["fake quantization"]++
}

// FakeQuant reads x and writes y.
func (r *recorder) FakeQuant(a engine.FakeQuantArgs) {
	r.noteQuant(2, a.X)
	r.Backend.FakeQuant(a)
}

// FakeQuantBackward reads x and dy, writes dx and reduces the step
// gradient.
func (r *recorder) FakeQuantBackward(a engine.FakeQuantArgs) {
	r.noteQuant(3, a.X)
	r.Backend.FakeQuantBackward(a)
}

// SGD reads parameter, gradient and momentum and writes two of them.
func (r *recorder) SGD(a engine.SGDArgs) {
	r.params += 5 * float64(a.Param.Numel())
	r.calls["SGD update"]++
	r.Backend.SGD(a)
}

// record runs one training step of the model at batch n behind a recorder.
func record(cfg models.Config, q qat.Config, n int) (*recorder, error) {
	r := &recorder{Backend: cpu.New(0), elems: map[string]float64{}, calls: map[string]int{}, n: n}
	m, err := models.New(r, engine.Float32, cfg, 1)
	if err != nil {
		return nil, err
	}
	if err := qat.Apply(r, m, q); err != nil {
		return nil, err
	}
	if _, err := train.Bench(r, m, train.BenchConfig{Batch: n, Steps: 1}); err != nil {
		return nil, err
	}
	return r, nil
}

// Convolution families, as the table names them.
const (
	famConv      = "convolutions (3×3, strided, stem)"
	famPointwise = "1×1 convolutions"
	famDepthwise = "depthwise convolutions"
)

func family(g engine.ConvGeom) string {
	switch {
	case g.Groups > 1 && g.Groups == g.C && g.Groups == g.K:
		return famDepthwise
	case g.R == 1 && g.S == 1:
		return famPointwise
	}
	return famConv
}

// convCost is the cost of one recorded convolution call at batch n on a
// path: "im2col" (cuda/conv.go: im2col + SGEMM, col2im; GEMMs for 1×1
// stride-1 convolutions; direct kernels for depthwise ones) or "cudnn"
// (implicit GEMM: operands once each).
func convCost(c conv, n int, path string) cost {
	g := c.g
	g.N = n
	cg := g.C / g.Groups
	x := float64(g.N * g.H * g.W * g.C)
	y := float64(g.N * g.OutH() * g.OutW() * g.K)
	w := float64(g.K * g.R * g.S * cg)
	pixels := g.N * g.OutH() * g.OutW()
	macs := float64(pixels) * float64(g.K) * float64(g.R*g.S*cg)
	flops := 2 * macs
	depthwise := family(g) == famDepthwise
	pointwise := g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 && g.Groups == 1
	gemmPeak := tf32Peak
	if depthwise {
		gemmPeak = fp32Peak // no GEMM: CUDA cores either way
	}
	if path == "cudnn" && !(depthwise || pointwise) {
		if !c.backward {
			return op(x+w+y, flops, 1, gemmPeak)
		}
		total := op(x+y+2*w, flops, 1, gemmPeak) // dw += ...
		if c.dx {
			total.add(op(y+w+x, flops, 1, gemmPeak))
		}
		return total
	}
	switch {
	case depthwise:
		if !c.backward {
			return op(x+w+y, flops, 1, gemmPeak)
		}
		total := op(x+y+2*w, flops, 2, gemmPeak) // partial sums, then the final add
		if c.dx {
			total.add(op(y+w+x, flops, 1, gemmPeak))
		}
		return total
	case pointwise:
		if !c.backward {
			return op(x+w+y, flops, 1, gemmPeak)
		}
		total := op(y+x+2*w, flops, 1, gemmPeak)
		if c.dx {
			total.add(op(y+w+x, flops, 1, gemmPeak))
		}
		return total
	}
	col := float64(pixels) * float64(g.R*g.S*g.C)
	rsc := g.R * g.S * cg
	buffers := 1
	if c.backward && c.dx {
		buffers = 2
	}
	chunk := max(1, min(pixels, maxColBytes/(4*rsc*buffers)))
	chunks := (pixels + chunk - 1) / chunk
	if !c.backward {
		// im2col: read x, write col; GEMM: read col and w, write y.
		return op(x+2*col+w+y, flops, 2*chunks*g.Groups, gemmPeak)
	}
	// im2col again; dw GEMM reads dy and col, updates dw.
	total := op(x+col+y+col+2*w, flops, 2*chunks*g.Groups, gemmPeak)
	if c.dx {
		// Clear dx; dcol GEMM reads dy and w, writes dcol; col2im reads
		// dcol and updates dx.
		total.add(op(x+y+w+col+col+2*x, flops, 1+2*chunks*g.Groups, gemmPeak))
	}
	return total
}

// row is one line of the table.
type row struct {
	family string
	paths  map[string]cost
}

func main() {
	nets := []struct {
		name string
		cfg  models.Config
	}{
		{"ResNet-18", models.Config{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3}},
		{"MobileNetV2", models.Config{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 3}},
	}
	quants := []struct {
		name string
		q    qat.Config
	}{
		{"float", qat.Config{Scheme: "none"}},
		{"LSQ W4A4", qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}},
	}
	fmt.Printf("H200 SXM: %.1f TB/s, %.1f TFLOPS TF32 dense, %.0f TFLOPS FP32. Ideal traffic (each operand once\n",
		bandwidth/1e12, tf32Peak/1e12, fp32Peak/1e12)
	fmt.Printf("per op), roofline time per op, summed. Generated by `go run ./bench/convmodel`.\n")
	var summary []string
	for _, net := range nets {
		for _, qc := range quants {
			// Batch 3: no weight tensor of these models has 3 rows, so
			// activations are told from weights by their leading size.
			rec, err := record(net.cfg, qc.q, 3)
			if err != nil {
				fmt.Fprintln(os.Stderr, "convmodel:", err)
				os.Exit(1)
			}
			for _, batch := range []int{64, 256} {
				im2col, cudnn := printTable(net.name, qc.name, batch, rec)
				summary = append(summary, fmt.Sprintf("| %s | %s | %d | %.1f | %.1f | %.2f | %.2f | %.2f |",
					net.name, qc.name, batch, im2col.bytes/1e9, cudnn.bytes/1e9, im2col.seconds*1e3, cudnn.seconds*1e3,
					im2col.seconds/cudnn.seconds))
			}
		}
	}
	fmt.Println("\nSummary, one training step:")
	fmt.Println()
	fmt.Println("| model | quant | batch | im2col GB | cuDNN GB | im2col ms | cuDNN ms | predicted speed-up |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|")
	for _, l := range summary {
		fmt.Println(l)
	}
}

// printTable prints the per-family table of one configuration and returns
// the step's totals on the two paths.
func printTable(net, quant string, batch int, rec *recorder) (im2col, cudnn cost) {
	rows := map[string]*row{}
	get := func(f string) *row {
		if rows[f] == nil {
			rows[f] = &row{family: f, paths: map[string]cost{}}
		}
		return rows[f]
	}
	for _, c := range rec.convs {
		r := get(family(c.g))
		for _, p := range []string{"im2col", "cudnn"} {
			t := r.paths[p]
			t.add(convCost(c, batch, p))
			r.paths[p] = t
		}
	}
	var names []string
	for f, elems := range rec.elems {
		floats := elems * float64(batch)
		if f == "fake quantization" {
			floats += rec.weights
		}
		c := op(floats, 0, rec.calls[f], fp32Peak)
		get(f).paths["im2col"] = c
		get(f).paths["cudnn"] = c
		names = append(names, f)
	}
	sgd := op(rec.params, 0, rec.calls["SGD update"], fp32Peak)
	get("SGD update").paths["im2col"] = sgd
	get("SGD update").paths["cudnn"] = sgd
	sort.Strings(names)
	order := append([]string{famConv, famPointwise, famDepthwise}, names...)
	order = append(order, "SGD update")
	fmt.Printf("\n%s, %s, batch %d, one training step:\n\n", net, quant, batch)
	fmt.Println("| op family | GFLOP | im2col GB | cuDNN GB | im2col launches | cuDNN launches | im2col ms | cuDNN ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	var tot [2]cost
	for _, f := range order {
		r, ok := rows[f]
		if !ok {
			continue
		}
		a, b := r.paths["im2col"], r.paths["cudnn"]
		tot[0].add(a)
		tot[1].add(b)
		fmt.Printf("| %s | %.1f | %.2f | %.2f | %s | %s | %.2f | %.2f |\n", f, a.flops/1e9, a.bytes/1e9, b.bytes/1e9,
			launches(a), launches(b), a.seconds*1e3, b.seconds*1e3)
	}
	fmt.Printf("| **step** | %.1f | %.2f | %.2f | %s | %s | **%.2f** | **%.2f** |\n", tot[0].flops/1e9,
		tot[0].bytes/1e9, tot[1].bytes/1e9, launches(tot[0]), launches(tot[1]), tot[0].seconds*1e3, tot[1].seconds*1e3)
	return tot[0], tot[1]
}

func launches(c cost) string {
	if c.launches == 0 {
		return "–"
	}
	return fmt.Sprint(c.launches)
}
