//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// Convolutions take one of two paths (SetConv, device.Options.Conv, --conv):
//
//   - cuDNN's implicit-GEMM (and other) kernels, which never materialise
//     the column matrix, when the cuDNN library loads;
//   - im2col + cuBLAS SGEMM (conv.go), always available.
//
// For the cuDNN path the backend keeps a plan per convolution shape: its
// descriptors, set once, and per pass (forward, backward data, backward
// filter) and TF32 setting the algorithm chosen the first time the shape
// runs. The choice comes from cuDNN's heuristics, and then (unless
// QMUL_CUDNN_FIND=0) from cuDNN's measurements of the heuristics'
// candidates on the layer's own operands; it is kept for the life of the
// backend. Only deterministic algorithms whose workspace fits in
// maxWorkspaceBytes are taken, so that runs repeat bit for bit as they do
// on the im2col path, and no convolution needs more scratch memory than
// the column buffers it replaces. Workspaces come from the caching
// allocator.
//
// In auto mode, 1×1 stride-1 convolutions stay single cuBLAS GEMMs on the
// activations (there is no column matrix to save), and depthwise
// convolutions go to cuDNN only when cuDNN's measured forward time beats
// our direct kernel's, timed on the same operands at the shape's first
// forward; its backward passes follow that choice. With --conv cudnn every
// convolution goes through cuDNN. In both modes a shape cuDNN rejects (it
// cannot describe it, or offers no supported algorithm within the bounds,
// as real cuDNN does for some grouped float convolutions) runs on the
// im2col path instead (its backward passes alone, when only they are
// rejected), and the backend says so in one line per shape.

// maxWorkspaceBytes bounds the workspace of one cuDNN call: the same bound
// as the im2col path's column buffers. A variable so that tests can lower
// it.
var maxWorkspaceBytes = uint64(maxColBytes)

// depthwiseReps is how many launches of the direct kernel the depthwise
// decision times.
const depthwiseReps = 3

// convPass is one of the three convolutions of a layer; the values are
// the QM_PASS_* of cudnn.go's shims.
type convPass int

const (
	passForward convPass = iota
	passBackwardData
	passBackwardFilter
)

// cudnnName is the pass's part of the names of cuDNN's query entry points.
func (p convPass) cudnnName() string {
	return [...]string{"ConvolutionForward", "ConvolutionBackwardData", "ConvolutionBackwardFilter"}[p]
}

// runName is the pass's cuDNN entry point.
func (p convPass) runName() string {
	return [...]string{"ConvolutionForward", "ConvolutionBackwardData", "ConvolutionBackwardFilter"}[p]
}

// convAlgo is an algorithm cuDNN offers for a pass (a
// cudnnConvolution*AlgoPerf_t): its number, status, measured time in
// milliseconds (0 from the heuristics), workspace bytes, determinism and
// math type.
type convAlgo struct {
	algo, status  int
	time          float32
	memory        uint64
	deterministic bool
	math          int
}

// convOperands are the device operands of a pass: x and dx share x, w and
// dw share w, y and dy share y.
type convOperands struct{ x, w, y devPtr }

// convDesc is the library's descriptors of one convolution shape.
type convDesc any

// convLib is cuDNN as the backend uses it, bound to the executor's context
// and stream: dnnHandle on a GPU, a fake in the unit tests.
type convLib interface {
	// name says which library this is, e.g. "cuDNN 9.1.0 (libcudnn.so.9)".
	name() string
	// statusName is the library's name for a status code.
	statusName(code int) string
	describe(g engine.ConvGeom) (convDesc, error)
	undescribe(d convDesc) error
	// algorithms lists algorithms for pass, best first: the heuristics'
	// (find false) or measured on op with workspace ws (find true; this
	// overwrites the pass's output).
	algorithms(d convDesc, pass convPass, find, tf32 bool, op convOperands, ws devPtr, wsBytes uint64) ([]convAlgo, error)
	// workspace is the workspace a needs.
	workspace(d convDesc, pass convPass, a convAlgo) (uint64, error)
	// run queues pass: out = conv(op) + beta·out.
	run(d convDesc, pass convPass, a convAlgo, op convOperands, ws devPtr, wsBytes uint64, beta float32) error
	close() error
}

// convPlan is what the backend keeps per convolution shape.
type convPlan struct {
	desc  convDesc
	algos map[algoKey]convAlgo
	// im2col is set when the shape runs on the im2col path: cuDNN
	// offered nothing usable (auto), or its direct kernels won (depthwise).
	im2col bool
	// backwardIm2col is set when cuDNN offered no usable algorithm for a
	// backward pass (auto): the backward passes run on im2col.
	backwardIm2col bool
	// decided is set once the forward pass has chosen the shape's path.
	decided bool
}

type algoKey struct {
	pass convPass
	tf32 bool
}

// convState is the convolution state of a Backend.
type convState struct {
	mode  string
	dnn   convLib // nil on the im2col path
	why   string  // why cuDNN is not used, in auto mode
	find  bool    // measure algorithms (device.Options.CudnnFind)
	plans map[engine.ConvGeom]*convPlan
	// rejected counts the shapes cuDNN rejected, which run on im2col.
	rejected int
	// note receives the one-line notice of each rejected shape (nil:
	// none).
	note func(string)
	// now is the clock of the depthwise decision.
	now func() time.Time
}

// SetConv implements engine.ConvPathChooser. It chooses the convolution
// path: device.ConvAuto (cuDNN when it loads and works, else im2col +
// SGEMM), device.ConvCudnn (every convolution cuDNN accepts through cuDNN;
// an error when it is unusable) or device.ConvIm2col. ConvPath says what
// it chose.
func (b *Backend) SetConv(mode string) error {
	if err := device.CheckConv(mode); err != nil {
		return fmt.Errorf("convolution path: %w", err)
	}
	if err := b.Err(); err != nil {
		return err
	}
	c := &b.conv
	c.mode, c.dnn, c.why = mode, nil, ""
	if mode == device.ConvIm2col {
		return nil
	}
	lib, err := b.x.convLibrary()
	if err != nil {
		if mode == device.ConvCudnn {
			return err
		}
		c.why = err.Error()
		return nil
	}
	c.dnn = lib
	return nil
}

// ConvPath implements engine.ConvPathChooser: it says in one line which
// path convolutions take, and why.
func (b *Backend) ConvPath() string {
	c := &b.conv
	const im2col = "im2col + cuBLAS SGEMM"
	switch {
	case c.mode == device.ConvIm2col:
		return im2col + " (chosen: --conv im2col)"
	case c.dnn == nil:
		return im2col + " (cuDNN unusable: " + c.why + ")"
	}
	how := "cuDNN heuristics"
	if c.find {
		how = "measured once per shape"
	}
	if c.mode == device.ConvCudnn {
		return fmt.Sprintf("%s for every convolution it accepts (chosen: --conv cudnn; algorithms %s)", c.dnn.name(), how)
	}
	return fmt.Sprintf("%s (algorithms %s; 1×1 convolutions on cuBLAS, depthwise where faster than our kernels)",
		c.dnn.name(), how)
}

// dnnPlan returns the cuDNN plan for g, or nil when g runs on the im2col
// path. Forward reports whether this is a forward pass, where a depthwise
// shape's path is decided.
func (b *Backend) dnnPlan(op string, g engine.ConvGeom) *convPlan {
	c := &b.conv
	if c.dnn == nil || b.err != nil {
		return nil
	}
	if c.mode == device.ConvAuto && isPointwise(g) {
		return nil
	}
	p, ok := c.plans[g]
	if !ok {
		p = &convPlan{algos: map[algoKey]convAlgo{}}
		desc, err := c.dnn.describe(g)
		if err != nil {
			b.reject(g, "", err)
			p.im2col = true
		}
		p.desc = desc
		if c.plans == nil {
			c.plans = map[engine.ConvGeom]*convPlan{}
		}
		c.plans[g] = p
	}
	if p.im2col {
		return nil
	}
	return p
}

// reject records that cuDNN rejects shape g (for the passes named, ""
// for all) and says so in one line: the shape runs on the im2col path.
func (b *Backend) reject(g engine.ConvGeom, passes string, why error) {
	c := &b.conv
	c.rejected++
	if c.note == nil {
		return
	}
	what := "it runs"
	if passes != "" {
		what = "its " + passes + " run"
	}
	path := "im2col + cuBLAS SGEMM"
	if isDepthwise(g) {
		path = "our depthwise kernels"
	}
	c.note(fmt.Sprintf("convolutions: %s rejects %s (%v); %s on %s", c.dnn.name(), describeShape(g), why, what, path))
}

// describeShape names a convolution shape in a person's words, e.g.
// "the 3×3 stride-2 depthwise convolution of 32 channels, 16×16 input,
// batch 8".
func describeShape(g engine.ConvGeom) string {
	kind := fmt.Sprintf("convolution of %d to %d channels", g.C, g.K)
	switch {
	case isDepthwise(g):
		kind = fmt.Sprintf("depthwise convolution of %d channels", g.C)
	case g.Groups > 1:
		kind = fmt.Sprintf("convolution of %d to %d channels in %d groups", g.C, g.K, g.Groups)
	}
	return fmt.Sprintf("the %d×%d stride-%d %s, %d×%d input, batch %d", g.R, g.S, g.Stride, kind, g.H, g.W, g.N)
}

// errNoAlgorithm is a pass for which cuDNN offered no usable algorithm.
var errNoAlgorithm = errors.New("no usable cuDNN algorithm")

// noAlgorithm explains errNoAlgorithm for the candidates cuDNN offered:
// how many it does not support (with its status), how many are not
// deterministic and how many need more workspace than bound.
func (b *Backend) noAlgorithm(pass convPass, cands []convAlgo, bound uint64) error {
	var unsupported, nondet, large int
	status := 0
	for _, a := range cands {
		switch {
		case a.status != 0:
			unsupported++
			status = a.status
		case !a.deterministic:
			nondet++
		case a.memory > bound:
			large++
		}
	}
	var why []string
	if unsupported > 0 {
		why = append(why, fmt.Sprintf("%d unsupported (%s)", unsupported, b.conv.dnn.statusName(status)))
	}
	if nondet > 0 {
		why = append(why, fmt.Sprintf("%d not deterministic", nondet))
	}
	if large > 0 {
		why = append(why, fmt.Sprintf("%d needing more than %d MiB of workspace", large, bound>>20))
	}
	return fmt.Errorf("%s: %w: of %d offered, %s", pass.cudnnName(), errNoAlgorithm, len(cands), strings.Join(why, ", "))
}

// algorithm returns the algorithm of pass for p, choosing it the first
// time. op holds the operands to measure on; out is the pass's output
// buffer for cuDNN's measurements to overwrite.
func (b *Backend) algorithm(p *convPlan, g engine.ConvGeom, pass convPass, op convOperands) (convAlgo, error) {
	c := &b.conv
	key := algoKey{pass, b.tf32}
	if a, ok := p.algos[key]; ok {
		return a, nil
	}
	cands, err := c.dnn.algorithms(p.desc, pass, false, b.tf32, convOperands{}, 0, 0)
	if err != nil {
		return convAlgo{}, err
	}
	usable := usableAlgos(cands, maxWorkspaceBytes)
	if len(usable) == 0 {
		return convAlgo{}, b.noAlgorithm(pass, cands, maxWorkspaceBytes)
	}
	a := usable[0]
	if c.find {
		if a, err = b.measure(p, g, pass, op, usable); err != nil {
			return convAlgo{}, err
		}
	}
	if !b.tf32 {
		a.math = cudnnFMAMath
	}
	if a.memory, err = c.dnn.workspace(p.desc, pass, a); err != nil {
		return convAlgo{}, err
	}
	if a.memory > maxWorkspaceBytes {
		return convAlgo{}, fmt.Errorf("%s: %w: algorithm %d needs %d bytes of workspace", pass.cudnnName(), errNoAlgorithm, a.algo, a.memory)
	}
	p.algos[key] = a
	return a, nil
}

// usableAlgos keeps the algorithms that succeeded, are deterministic and
// need at most bound bytes of workspace, in order.
func usableAlgos(cands []convAlgo, bound uint64) []convAlgo {
	var out []convAlgo
	for _, a := range cands {
		if a.status == 0 && a.deterministic && a.memory <= bound {
			out = append(out, a)
		}
	}
	return out
}

// measure has cuDNN time the candidates on the layer's operands, with a
// workspace as large as the largest candidate's, and returns the fastest
// usable one. The backward-filter pass measures into a scratch dw, since
// the layer's dw accumulates.
func (b *Backend) measure(p *convPlan, g engine.ConvGeom, pass convPass, op convOperands, cands []convAlgo) (convAlgo, error) {
	var wsBytes uint64
	for _, a := range cands {
		wsBytes = max(wsBytes, a.memory)
	}
	ws, ok := b.scratch("cuDNN find", int(wsBytes))
	if !ok {
		return convAlgo{}, b.err
	}
	defer b.release(ws)
	if pass == passBackwardFilter {
		dw, ok := b.scratch("cuDNN find", 4*g.K*g.R*g.S*(g.C/g.Groups))
		if !ok {
			return convAlgo{}, b.err
		}
		defer b.release(dw)
		op.w = dw.ptr
	}
	measured, err := b.conv.dnn.algorithms(p.desc, pass, true, b.tf32, op, ws.ptr, wsBytes)
	if err != nil {
		return convAlgo{}, err
	}
	usable := usableAlgos(measured, wsBytes)
	if len(usable) == 0 {
		return convAlgo{}, b.noAlgorithm(pass, measured, wsBytes)
	}
	return usable[0], nil
}

// runDnn queues pass of p with its algorithm and a workspace from the
// cache.
func (b *Backend) runDnn(op string, p *convPlan, g engine.ConvGeom, pass convPass, ops convOperands, beta float32) {
	if b.err != nil {
		return
	}
	a, err := b.algorithm(p, g, pass, ops)
	if err != nil {
		b.fail(op, err)
		return
	}
	var ws scratch
	if a.memory > 0 {
		var ok bool
		if ws, ok = b.scratch(op, int(a.memory)); !ok {
			return
		}
		defer b.release(ws)
	}
	b.work.add(op, engine.OpWork{LibraryCalls: 1})
	b.fail(op, b.conv.dnn.run(p.desc, pass, a, ops, ws.ptr, a.memory, beta))
}

// dnnForward runs the forward convolution through cuDNN and reports
// whether it did; false means the caller takes the im2col path.
func (b *Backend) dnnForward(xp, wp, yp devPtr, g engine.ConvGeom) bool {
	p := b.dnnPlan("Conv2d", g)
	if p == nil {
		return b.err != nil
	}
	ops := convOperands{x: xp, w: wp, y: yp}
	if !p.decided && !b.chooseForward(p, g, ops) {
		return b.err != nil
	}
	b.runDnn("Conv2d", p, g, passForward, ops, 0)
	return true
}

// chooseForward settles, at a shape's first forward, whether it runs on
// cuDNN: a shape cuDNN rejects (no usable algorithm) falls back to
// im2col, and in auto mode a depthwise shape stays on our direct kernel
// unless cuDNN's measured time beats it.
func (b *Backend) chooseForward(p *convPlan, g engine.ConvGeom, ops convOperands) bool {
	p.decided = true
	a, err := b.algorithm(p, g, passForward, ops)
	switch {
	case errors.Is(err, errNoAlgorithm):
		b.reject(g, "", err)
		p.im2col = true
		return false
	case err != nil:
		b.fail("Conv2d", err)
		return false
	}
	if b.conv.mode != device.ConvAuto || !isDepthwise(g) {
		return true
	}
	if a.time <= 0 { // heuristics only: nothing to compare with
		p.im2col = true
		return false
	}
	ours, err := b.timeDirectForward(ops, g)
	if err != nil {
		b.fail("Conv2d", err)
		return false
	}
	dnn := time.Duration(float64(a.time) * float64(time.Millisecond))
	if dnn >= ours {
		p.im2col = true
		return false
	}
	return true
}

// timeDirectForward times depthwiseReps launches of our depthwise kernel
// on ops (whose output the real pass overwrites afterwards).
func (b *Backend) timeDirectForward(ops convOperands, g engine.ConvGeom) (time.Duration, error) {
	if err := b.x.sync(); err != nil {
		return 0, err
	}
	start := b.conv.now()
	for range depthwiseReps {
		b.depthwiseForward(dptr[float32](ops.x), dptr[float32](ops.w), dptr[float32](ops.y), g)
	}
	if b.err != nil {
		return 0, b.err
	}
	if err := b.x.sync(); err != nil {
		return 0, err
	}
	return b.conv.now().Sub(start) / depthwiseReps, nil
}

// dnnBackward runs the backward convolutions through cuDNN and reports
// whether it did: dx (when dxp is not 0) overwritten, dw accumulated.
func (b *Backend) dnnBackward(xp, wp, dyp, dxp, dwp devPtr, g engine.ConvGeom) bool {
	p := b.dnnPlan("Conv2dBackward", g)
	if p == nil || p.backwardIm2col {
		return b.err != nil
	}
	if !p.decided {
		// Backward before any forward of the shape (not in training):
		// decide as a forward would, on scratch output.
		y, ok := b.scratch("Conv2dBackward", 4*g.N*g.OutH()*g.OutW()*g.K)
		if !ok {
			return true
		}
		defer b.release(y)
		if !b.chooseForward(p, g, convOperands{x: xp, w: wp, y: y.ptr}) {
			return b.err != nil
		}
	}
	dataOps := convOperands{x: dxp, w: wp, y: dyp}
	filterOps := convOperands{x: xp, w: dwp, y: dyp}
	// A backward pass cuDNN rejects sends the shape's backward passes to
	// im2col.
	if (dxp != 0 && !b.backwardUsable(p, g, passBackwardData, dataOps)) ||
		!b.backwardUsable(p, g, passBackwardFilter, filterOps) {
		return b.err != nil
	}
	if dxp != 0 {
		b.runDnn("Conv2dBackward", p, g, passBackwardData, dataOps, 0)
	}
	b.runDnn("Conv2dBackward", p, g, passBackwardFilter, filterOps, 1)
	return true
}

// backwardUsable chooses pass's algorithm and reports whether there is
// one; with none, the shape's backward passes go to im2col from then on.
// Other errors are recorded.
func (b *Backend) backwardUsable(p *convPlan, g engine.ConvGeom, pass convPass, ops convOperands) bool {
	_, err := b.algorithm(p, g, pass, ops)
	switch {
	case errors.Is(err, errNoAlgorithm):
		b.reject(g, "backward passes", err)
		p.backwardIm2col = true
		return false
	case err != nil:
		b.fail("Conv2dBackward", err)
		return false
	}
	return true
}

// closeConv releases the plans' descriptors. Plans exist only when cuDNN
// loaded, so convLibrary returns it again.
func (b *Backend) closeConv() error {
	c := &b.conv
	if len(c.plans) == 0 {
		return nil
	}
	lib, err := b.x.convLibrary()
	if err != nil {
		return err
	}
	var errs []error
	for g, p := range c.plans {
		if p.desc != nil {
			errs = append(errs, lib.undescribe(p.desc))
		}
		delete(c.plans, g)
	}
	return errors.Join(errs...)
}
