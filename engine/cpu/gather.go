package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// GatherImages implements engine.Backend.
func (b *Backend) GatherImages(a engine.GatherArgs) {
	must(engine.CheckGatherImages(a))
	defer b.span(opGather)()
	src := U8(a.Src)
	idx := I32(a.Index)
	var crop, flip []int32
	if a.Crop != nil {
		crop = I32(a.Crop)
	}
	if a.Flip != nil {
		flip = I32(a.Flip)
	}
	h, w, c := a.Src.Shape[1], a.Src.Shape[2], a.Src.Shape[3]
	// Normalisation as one multiply-add per pixel: v·scale + shift.
	scale, shift := make([]float32, 256*c), make([]float32, c)
	for ch := 0; ch < c; ch++ {
		for v := 0; v < 256; v++ {
			scale[v*c+ch] = (float32(v)/255 - a.Mean[ch]) / a.Std[ch]
		}
		shift[ch] = (0 - a.Mean[ch]) / a.Std[ch]
	}
	out := F32(a.Out)
	n := a.Src.Shape[0]
	b.parallel(len(idx), 8, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			j := int(idx[i])
			if j < 0 || j >= n {
				panic(fmt.Sprintf("cpu: image index %d outside [0,%d)", j, n))
			}
			img := src[j*h*w*c : (j+1)*h*w*c]
			dst := out[i*h*w*c : (i+1)*h*w*c]
			dy, dx := 0, 0
			if crop != nil {
				dy, dx = int(crop[2*i])-a.Pad, int(crop[2*i+1])-a.Pad
			}
			flipped := flip != nil && flip[i] != 0
			for y := 0; y < h; y++ {
				sy := y + dy
				for x := 0; x < w; x++ {
					sx := x
					if flipped {
						sx = w - 1 - x
					}
					sx += dx
					o := dst[(y*w+x)*c : (y*w+x+1)*c]
					if sy < 0 || sy >= h || sx < 0 || sx >= w {
						copy(o, shift)
						continue
					}
					p := img[(sy*w+sx)*c : (sy*w+sx+1)*c]
					for ch, v := range p {
						o[ch] = scale[int(v)*c+ch]
					}
				}
			}
		}
	})
}
