//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// maxChannels bounds the image channels of GatherImages
// (QM_MAX_CHANNELS in kernels/gather.cu).
const maxChannels = 64

// GatherImages implements engine.Backend. The per-channel mean and standard
// deviation travel in the kernel's parameters (a qm_norm struct), so at
// most maxChannels channels are supported. An image index out of range is
// reported by Err.
func (b *Backend) GatherImages(a engine.GatherArgs) {
	must(engine.CheckGatherImages(a))
	nsrc, h, w, c := a.Src.Shape[0], a.Src.Shape[1], a.Src.Shape[2], a.Src.Shape[3]
	batch := a.Index.Numel()
	checkFloat("gather images", a.Out)
	if c > maxChannels {
		panic(fmt.Sprintf("cuda: gather images: %d channels, at most %d", c, maxChannels))
	}
	if batch == 0 || b.err != nil {
		return
	}
	norm := new(qmNorm)
	copy(norm.mean[:], a.Mean)
	copy(norm.std[:], a.Std)
	b.launchN("GatherImages", a.Out.Numel(), qmGatherImages(dptr[uint8](b.addr(a.Src, engine.Uint8)), b.i32(a.Index),
		b.i32(a.Crop), b.i32(a.Flip), int64(nsrc), narrow(batch), narrow(h), narrow(w), narrow(c), narrow(a.Pad),
		norm, b.f32(a.Out), b.statusWord()))
}
