package engine

import "fmt"

// GatherOps assemble the input batch (engine/cpu/gather.go, cuda/gather.go,
// kernels/gather.cu).
type GatherOps interface {
	// GatherImages assembles a normalised, augmented float batch from uint8
	// images resident on the backend; see GatherArgs.
	GatherImages(a GatherArgs)
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

// CheckGatherImages reports operands of GatherImages that do not fit: Src
// Uint8 [N,H,W,C], Index Int32, Out of len(Index) images, one mean and one
// deviation per channel, Crop two and Flip one Int32 per image.
func CheckGatherImages(a GatherArgs) error {
	const op = "gather images"
	if err := checkRequired(op, a.Src, a.Src, a.Index, a.Out); err != nil {
		return err
	}
	if a.Src.DType != Uint8 || len(a.Src.Shape) != 4 || a.Index.DType != Int32 {
		return fmt.Errorf("%s from %v by %v", op, a.Src, a.Index)
	}
	h, w, c := a.Src.Shape[1], a.Src.Shape[2], a.Src.Shape[3]
	batch := a.Index.Numel()
	if len(a.Mean) != c || len(a.Std) != c {
		return fmt.Errorf("%s: %d channels with %d means and %d deviations", op, c, len(a.Mean), len(a.Std))
	}
	return firstError(
		checkNumel(op, "out", a.Out, batch*h*w*c),
		checkType(op, Int32, a.Crop, a.Flip),
		checkNumel(op, "crop", a.Crop, 2*batch),
		checkNumel(op, "flip", a.Flip, batch))
}
