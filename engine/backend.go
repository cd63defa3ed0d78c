package engine

import "fmt"

// Backend is the op-level contract every compute backend implements. The CPU
// backend (engine/cpu) is the reference; other backends are tested against it.
// Its methods are grouped into the interfaces it embeds, one per kind of op;
// each op family lives in files of the same name in engine/cpu, cuda and
// kernels (see docs/design.md).
//
// Conventions shared by all ops:
//   - tensors are contiguous views; "[rows, C]" means the op treats the tensor
//     as a matrix with C columns whatever its rank;
//   - parameter-gradient outputs (dw, db, dgamma, ...) are accumulated (+=),
//     every other output is overwritten;
//   - an optional tensor argument may be nil.
//
// Ops panic on programming errors (mismatched shapes or types); runtime
// failures of a device (out of memory, a failed launch) are reported by Err.
//
// Some backends also implement the optional interfaces Concurrent,
// TF32Switch, ConvPathChooser and Closer, which callers reach by type
// assertion.
type Backend interface {
	Device
	Storage
	Math
	Layers
	Training
	Quantization
	Unlearning
}

// Device names a backend and reports its asynchronous failures.
type Device interface {
	// Name is the short device name ("cpu", "cuda:0").
	Name() string
	// Describe is a one-line human description of the device.
	Describe() string
	// Err returns (and clears) the first asynchronous error since the last
	// call; it waits for queued work to finish.
	Err() error
}

// Storage allocates tensors on a backend and copies them to and from the
// host.
type Storage interface {
	// Supports reports whether tensors of the given type can be allocated.
	Supports(dt DType) bool

	// Alloc returns a tensor with undefined contents, reusing cached memory.
	Alloc(dt DType, shape ...int) *Tensor
	// Zeros returns a zero-filled tensor.
	Zeros(dt DType, shape ...int) *Tensor
	// Free returns a tensor's memory to the backend's cache. The tensor and
	// every view of it must not be used afterwards.
	Free(t *Tensor)
	// Upload copies host data into t; src is a []float32, []float64, []int32
	// or []uint8 matching t's type and size.
	Upload(t *Tensor, src any)
	// Download copies t into dst, a slice matching t's type and size.
	Download(t *Tensor, dst any)
}

// Math is linear algebra on whole tensors: elementwise updates, row gathers,
// reductions accumulated in float64, and matrix products.
type Math interface {
	// Fill sets every element of x to v.
	Fill(x *Tensor, v float64)
	// Copy copies src into dst (same type and size).
	Copy(dst, src *Tensor)
	// Scale multiplies x by a in place.
	Scale(x *Tensor, a float64)
	// Axpy computes y += a·x.
	Axpy(a float64, x, y *Tensor)
	// Add computes dst = a + b (dst may alias a or b).
	Add(dst, a, b *Tensor)
	// Gather copies rows: dst[i] = src[index[i]] for the leading dimension.
	Gather(dst, src, index *Tensor)
	// SumSquares writes out[i] = Σ ts[i]², accumulated in float64, into a
	// float tensor of len(ts) elements.
	SumSquares(ts []*Tensor, out *Tensor)
	// Dot writes out[i] = Σ as[i]·bs[i], accumulated in float64, into a
	// float tensor of len(as) elements.
	Dot(as, bs []*Tensor, out *Tensor)
	// RowSqNorm writes out[i] = Σ_j x[i,j]² for x viewed as [rows, cols].
	RowSqNorm(x, out *Tensor)

	// Gemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices,
	// with op(a) m×k, op(b) k×n and c m×n.
	Gemm(transA, transB bool, m, n, k int, alpha float64, a, b *Tensor, beta float64, c *Tensor)
}

// Layers are the forward and backward passes of the network's layers and of
// its training loss.
type Layers interface {
	// AddBias adds b[j] to every row of y viewed as [rows, len(b)].
	AddBias(y, b *Tensor)
	// BiasGrad accumulates db[j] += Σ_rows dy[row, j].
	BiasGrad(dy, db *Tensor)

	// Conv2d computes y = conv(x, w) for x [N,H,W,C], w [K,R,S,C/groups],
	// y [N,OH,OW,K], without bias.
	Conv2d(x, w, y *Tensor, g ConvGeom)
	// Conv2dBackward computes dx (overwritten, skipped when nil) and
	// accumulates dw from dy.
	Conv2dBackward(x, w, dy, dx, dw *Tensor, g ConvGeom)

	// BatchNorm normalises x viewed as [rows, C]; see BatchNormArgs.
	BatchNorm(a BatchNormArgs)
	// BatchNormBackward computes dx and accumulates dgamma, dbeta; see
	// BatchNormArgs.
	BatchNormBackward(a BatchNormArgs)

	// Activate computes y = act(x) elementwise (x and y may alias). For
	// PReLU, alpha holds one slope or one per channel (the last dimension).
	Activate(act Activation, x, alpha, y *Tensor)
	// ActivateBackward computes dx from dy (dx may alias dy). x is the
	// input of the forward op, or its output for ReLU and ReLU6. For PReLU
	// it accumulates dalpha.
	ActivateBackward(act Activation, x, alpha, dy, dx, dalpha *Tensor)

	// Pool2d computes max or average pooling of x [N,H,W,C] into
	// y [N,OH,OW,C]; for max pooling, argmax (Int32, y's shape) records the
	// flat input position of each maximum. Average pooling counts padding.
	Pool2d(kind PoolKind, x, y, argmax *Tensor, g PoolGeom)
	// Pool2dBackward computes dx (overwritten) from dy.
	Pool2dBackward(kind PoolKind, dy, argmax, dx *Tensor, g PoolGeom)
	// GlobalAvgPool averages x [N,H,W,C] over H and W into y [N,C].
	GlobalAvgPool(x, y *Tensor)
	// GlobalAvgPoolBackward spreads dy [N,C] evenly into dx [N,H,W,C].
	GlobalAvgPoolBackward(dy, dx *Tensor)

	// SoftmaxCrossEntropy evaluates the weighted softmax cross-entropy and
	// its per-sample outputs; see LossArgs.
	SoftmaxCrossEntropy(a LossArgs)
}

// Training is the work of a training step outside the network: assembling
// the input batch and updating the parameters.
type Training interface {
	// SGD applies one SGD step to a parameter; see SGDArgs.
	SGD(a SGDArgs)

	// GatherImages assembles a normalised, augmented float batch from uint8
	// images resident on the backend; see GatherArgs.
	GatherImages(a GatherArgs)
}

// Quantization is the fake quantizers and observers of quantization-aware
// training.
type Quantization interface {
	// FakeQuant maps X onto a uniform grid; see FakeQuantArgs.
	FakeQuant(a FakeQuantArgs)
	// FakeQuantBackward computes the straight-through input gradient and
	// the scale gradient; see FakeQuantArgs.
	FakeQuantBackward(a FakeQuantArgs)
	// Observe updates min/max observers and the scale and zero point they
	// imply; see ObserveArgs.
	Observe(a ObserveArgs)
	// DoReFaWeights quantizes weights as DoReFa-Net does; see DoReFaArgs.
	DoReFaWeights(a DoReFaArgs)
	// DoReFaWeightsBackward accumulates the weight gradient; see DoReFaArgs.
	DoReFaWeightsBackward(a DoReFaArgs)
}

// Unlearning is the ops only the unlearning methods use: the ℓ1 penalty's
// subgradient, running square roots, Q-MUL's similar labels, the entropy
// objective and per-sample gradient norms.
type Unlearning interface {
	// AddSign computes y += a·sign(x) (sign(0) = 0): the ℓ1 penalty's
	// subgradient.
	AddSign(a float64, x, y *Tensor)
	// AddSqrt computes dst += sqrt(src) elementwise.
	AddSqrt(dst, src *Tensor)
	// SimilarLabels writes, for each row of Logits with label y,
	// Out[i] = argmin_{j≠y} |p_j − p_y| with p = softmax(logits) (the
	// smallest such j on ties): Q-MUL's similar label.
	SimilarLabels(logits, labels, out *Tensor)
	// SoftmaxEntropy writes Entropy[i] = −Σ_j p_ij log p_ij and DLogits,
	// the gradient of Scale·Σ_i w_i·Entropy[i]; it uses LossArgs' Logits,
	// Weights, Scale, DLogits and Entropy.
	SoftmaxEntropy(a LossArgs)
	// ConvPerSampleSqNorm writes out[n] = ‖∂/∂w of sample n's share of the
	// loss‖², the squared Frobenius norm of Σ_pixels im2col(x_n)ᵀ·dy_n,
	// for the convolution g (a linear layer is a 1×1 convolution over 1×1
	// maps).
	ConvPerSampleSqNorm(x, dy, out *Tensor, g ConvGeom)
	// BatchNormPerSampleSqNorm writes, per sample n, the squared norms of
	// its shares of dgamma (Σ_pixels dy·x̂ per channel) and dbeta (Σ_pixels
	// dy) into OutGamma and OutBeta; it uses BatchNormArgs' X, DY, Mean,
	// InvStd (and Y and Act for a fused activation) with rows grouped by
	// sample (rows/N pixels each).
	BatchNormPerSampleSqNorm(a BatchNormArgs, n int, outGamma, outBeta *Tensor)
}

// Concurrent is implemented by backends that say whether their ops may be
// called from several goroutines at once (each op still writing distinct
// outputs). A backend that does not implement it is taken to be unsafe.
type Concurrent interface {
	ConcurrentSafe() bool
}

// TF32Switch is implemented by backends whose matrix products can use
// TF32 tensor-op math; SetTF32 switches it on or off.
type TF32Switch interface {
	SetTF32(on bool) error
}

// ConvPathChooser is implemented by backends with more than one way to
// compute convolutions (the CUDA backend: cuDNN or im2col + GEMM).
// SetConv takes "auto", "cudnn" or "im2col"; ConvPath says in one line
// which path convolutions take, and why.
type ConvPathChooser interface {
	SetConv(mode string) error
	ConvPath() string
}

// Closer is implemented by backends that hold device resources (contexts,
// streams, library handles); Close releases them, after which the backend
// must not be used. The CPU backend holds none.
type Closer interface {
	Close() error
}

// ConvGeom is the geometry of a 2-D convolution over NHWC activations.
type ConvGeom struct {
	N, H, W, C int // input batch, height, width, channels
	K, R, S    int // output channels, kernel height and width
	Stride     int
	Pad        int
	Groups     int
}

// OutH is the output height.
func (g ConvGeom) OutH() int { return (g.H+2*g.Pad-g.R)/g.Stride + 1 }

// OutW is the output width.
func (g ConvGeom) OutW() int { return (g.W+2*g.Pad-g.S)/g.Stride + 1 }

// Validate reports an inconsistent geometry.
func (g ConvGeom) Validate() error {
	switch {
	case g.N < 0 || g.H <= 0 || g.W <= 0 || g.C <= 0 || g.K <= 0 || g.R <= 0 || g.S <= 0:
		return fmt.Errorf("conv geometry %+v has a non-positive size", g)
	case g.Stride <= 0 || g.Pad < 0 || g.Groups <= 0:
		return fmt.Errorf("conv geometry %+v has a bad stride, padding or group count", g)
	case g.C%g.Groups != 0 || g.K%g.Groups != 0:
		return fmt.Errorf("conv geometry %+v: channels not divisible by groups", g)
	case g.OutH() <= 0 || g.OutW() <= 0:
		return fmt.Errorf("conv geometry %+v: kernel larger than the padded input", g)
	}
	return nil
}

// PoolKind selects max or average pooling.
type PoolKind uint8

// Pooling kinds.
const (
	MaxPool PoolKind = iota + 1
	AvgPool
)

// PoolGeom is the geometry of a 2-D pooling over NHWC activations.
type PoolGeom struct {
	N, H, W, C int
	Kernel     int
	Stride     int
	Pad        int
}

// OutH is the output height.
func (g PoolGeom) OutH() int { return (g.H+2*g.Pad-g.Kernel)/g.Stride + 1 }

// OutW is the output width.
func (g PoolGeom) OutW() int { return (g.W+2*g.Pad-g.Kernel)/g.Stride + 1 }

// Activation selects an elementwise nonlinearity.
type Activation uint8

// Activations.
const (
	ReLU Activation = iota + 1
	ReLU6
	PReLU
)

// BatchNormArgs are the operands of BatchNorm and BatchNormBackward. X, Y, DY
// and DX are viewed as [rows, C] with C = len(Gamma).
//
// Forward in training mode normalises with the batch statistics, saves the
// batch mean and 1/sqrt(var+Eps) into Mean and InvStd, and updates
// RunMean/RunVar with Momentum (RunVar from the unbiased variance, as PyTorch).
// Forward in evaluation mode uses RunMean/RunVar and writes the matching mean
// and inverse deviation into Mean and InvStd, so that the same backward serves
// both modes. Backward uses X, DY, Gamma, Mean, InvStd and Train.
//
// Act, when ReLU or ReLU6, fuses that activation: the forward pass writes
// Y = act(BN(X)), and the backward pass (given that Y) first zeroes DY
// where the activation was flat, as the activation's own backward would.
type BatchNormArgs struct {
	X, Y, DY, DX    *Tensor
	Gamma, Beta     *Tensor
	DGamma, DBeta   *Tensor
	RunMean, RunVar *Tensor
	Mean, InvStd    *Tensor
	Train           bool
	Momentum, Eps   float64
	Act             Activation
}

// LossArgs are the operands of SoftmaxCrossEntropy over Logits [N, classes]
// and Labels (Int32 [N]).
//
// With w_i = Weights[i] (1 when Weights is nil) and p = softmax(logits):
//
//	Loss[i]    = −log p[i, y_i]          (unweighted)
//	Pred[i]    = argmax_j p[i, j]        (first maximum)
//	Conf[i]    = p[i, y_i]
//	Entropy[i] = −Σ_j p[i,j] log p[i,j]
//	DLogits[i] = Scale · w_i · (p[i] − onehot(y_i))
//
// so DLogits is the gradient of Scale·Σ_i w_i·Loss[i]. Every output is optional.
type LossArgs struct {
	Logits, Labels, Weights *Tensor
	Scale                   float64
	DLogits                 *Tensor
	Loss, Pred, Conf        *Tensor
	Entropy                 *Tensor
}

// SGDArgs are the operands of one SGD step (PyTorch's semantics, dampening 0):
//
//	g   = Mask ⊙ (GradScale·Grad + WeightDecay·Param)
//	Buf = Momentum·Buf + g                          (when Momentum > 0)
//	d   = g + Momentum·Buf if Nesterov, else Buf    (g when Momentum = 0)
//	Param −= LR · d
//
// A zero in Mask therefore freezes that element exactly. Mask and Buf may be
// nil (no mask; no momentum).
type SGDArgs struct {
	Param, Grad, Buf, Mask *Tensor
	LR, Momentum           float64
	WeightDecay            float64
	GradScale              float64
	Nesterov               bool
}

// GatherArgs are the operands of GatherImages. Src holds uint8 images
// [N,H,W,C]; Index (Int32 [B]) picks them; Crop (Int32 [B,2], optional) gives
// for each one the top-left corner (row, column) of the H×W window in the
// image zero-padded by Pad on every side; Flip (Int32 [B], optional) mirrors
// horizontally where non-zero. Out[b,h,w,c] = (pixel/255 − Mean[c]) / Std[c].
type GatherArgs struct {
	Src, Index, Crop, Flip *Tensor
	Pad                    int
	Mean, Std              []float32
	Out                    *Tensor
}

// FakeQuantArgs are the operands of FakeQuant and FakeQuantBackward, the
// uniform affine fake quantizer shared by every scheme. With channel c of an
// element (the leading index when Scale has more than one element, else 0),
// s = ScaleMul·Scale[c], z = ZeroPoint[c] (0 when ZeroPoint is nil) and
// v = X/s + z:
//
//	Y = s·(clamp(round(v), Lo, Hi) − z)        (round half to even)
//
// Backward, with "inside" meaning Lo ≤ v ≤ Hi:
//
//	DX = DY where inside, else 0               (+= when Accumulate)
//	DScale[c] += GradScale·( CInside·Σ_inside DY·(round(v)−v)
//	                       + CAbove·Σ_{v>Hi} DY + CBelow·Σ_{v<Lo} DY )
//
// which is LSQ's step gradient with (CInside, CAbove, CBelow) = (1, Hi, Lo)
// and PACT's clip gradient with (0, 1, 0). DScale may be nil.
type FakeQuantArgs struct {
	X, Y, DY, DX             *Tensor
	Scale, ZeroPoint, DScale *Tensor
	ScaleMul                 float64
	Lo, Hi                   int
	GradScale                float64
	CInside, CAbove, CBelow  float64
	Accumulate               bool
}

// ObserveArgs are the operands of Observe. X is viewed per channel like
// FakeQuantArgs (leading index when Min has more than one element). In
// training (Update set) the batch minimum and maximum of each channel (with
// 0 included, so that zero stays exactly representable) update Min and Max:
// the first update (Count = 0) copies them, later ones move by Momentum.
// Then, for the grid [Lo, Hi]:
//
//	symmetric: Scale = max(|Min|, |Max|)/Hi, ZeroPoint = 0
//	affine:    Scale = (Max − Min)/(Hi − Lo), ZeroPoint = Lo − round(Min/Scale)
//
// with Scale floored at 1e-8 so that an all-zero tensor stays finite.
type ObserveArgs struct {
	X                *Tensor
	Min, Max         *Tensor
	Scale, ZeroPoint *Tensor
	Update           bool
	Count            int64
	Momentum         float64
	Symmetric        bool
	Lo, Hi           int
}

// DoReFaArgs are the operands of DoReFaWeights and its backward: with
// t = tanh(W), M = max|t| over the whole tensor and n = 2^Bits − 1,
//
//	Y = 2·round(n·(t/(2M) + 1/2))/n − 1
//
// and the backward pass accumulates into DW the exact derivative of
// 2·(t/(2M) + 1/2) − 1 (rounding passed straight through, the dependence
// on M included) applied to DY.
type DoReFaArgs struct {
	W, Y, DY, DW *Tensor
	Bits         int
}

// WorkCounter is implemented by backends that count the device work they
// issue (the CUDA backend). Work returns the totals since the backend was
// opened. On a GPU each launch, library call and memory operation is
// queued work with a fixed cost of a few microseconds on the host and on
// the device, whatever its size: their count per training step is what
// bounds the step time of small models.
type WorkCounter interface {
	Work() Work
}

// OpTimer is implemented by backends that can time their ops by family
// (the CPU backend, whose ops finish before they return): `qmulgpu bench
// --profile` splits a training step with it.
type OpTimer interface {
	// TimeOps switches timing on, from zero, or off.
	TimeOps(on bool)
	// OpTimes returns the wall time spent in each family of ops since
	// timing was switched on, in the backend's order of families.
	OpTimes() []OpTime
}

// OpTime is the time a backend spent in one family of ops: wall time, and
// the processor time of the process meanwhile (all threads).
type OpTime struct {
	Op         string  `json:"op"`
	Calls      int64   `json:"calls"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Work is device work, in total and by op.
type Work struct {
	OpWork
	// PerOp splits the counts by the op that issued them ("Conv2d",
	// "Alloc", ...).
	PerOp map[string]OpWork
}

// OpWork counts one op's device work.
type OpWork struct {
	// Launches are kernels of this project launched.
	Launches int64 `json:"launches"`
	// LibraryCalls are cuBLAS and cuDNN calls, each of which launches one
	// or more kernels of its own.
	LibraryCalls int64 `json:"library_calls"`
	// MemoryOps are device fills (memsets) and device-to-device copies.
	MemoryOps int64 `json:"memory_ops"`
	// Allocs and AllocBytes are the blocks the backend's allocator handed
	// out (tensors and scratch buffers, in their rounded sizes), whether
	// from its cache or from the device.
	Allocs     int64 `json:"allocs"`
	AllocBytes int64 `json:"alloc_bytes"`
}

// Add returns the sum of w and v.
func (w OpWork) Add(v OpWork) OpWork {
	return OpWork{w.Launches + v.Launches, w.LibraryCalls + v.LibraryCalls, w.MemoryOps + v.MemoryOps,
		w.Allocs + v.Allocs, w.AllocBytes + v.AllocBytes}
}

// Sub returns w − v.
func (w OpWork) Sub(v OpWork) OpWork {
	return OpWork{w.Launches - v.Launches, w.LibraryCalls - v.LibraryCalls, w.MemoryOps - v.MemoryOps,
		w.Allocs - v.Allocs, w.AllocBytes - v.AllocBytes}
}
