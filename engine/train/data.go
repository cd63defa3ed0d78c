// Package train runs training and evaluation loops: batches assembled on the
// backend from uint8 images resident there, forward, loss, backward and the
// optimiser step, with per-epoch statistics.
package train

import (
	"math/rand/v2"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
)

// BatchOps are the ops that assemble minibatches on a backend.
type BatchOps interface {
	engine.Storage
	engine.ElementwiseOps
	engine.GatherOps
}

// DeviceData is a data set resident on a backend: uint8 images, int32
// labels and the normalisation constants.
type DeviceData struct {
	Name       string
	Images     *engine.Tensor // Uint8 [N,H,W,C]
	Labels     *engine.Tensor // Int32 [N]
	HostLabels []int32
	N, H, W, C int
	Classes    int
	Mean, Std  []float32
}

// Upload copies a data set to the backend.
func Upload(b engine.Storage, ds *data.Dataset) *DeviceData {
	mean, std := data.Stats(ds.Name)
	d := &DeviceData{Name: ds.Name, HostLabels: ds.Labels, N: ds.N, H: ds.H, W: ds.W, C: ds.C,
		Classes: ds.Classes, Mean: mean, Std: std}
	d.Images = b.Alloc(engine.Uint8, ds.N, ds.H, ds.W, ds.C)
	b.Upload(d.Images, ds.Images)
	d.Labels = b.Alloc(engine.Int32, ds.N)
	b.Upload(d.Labels, ds.Labels)
	return d
}

// Free releases the backend memory.
func (d *DeviceData) Free(b engine.Storage) {
	b.Free(d.Images)
	b.Free(d.Labels)
}

// Plan is one minibatch described on the host: which samples, and the
// augmentation drawn for each.
type Plan struct {
	Index []int32
	Crop  []int32 // 2 per sample, nil without cropping
	Flip  []int32 // nil without flipping
}

// Plans splits indices into minibatches of at most batch samples (the last
// may be smaller), shuffled by r when r is non-nil, with augmentation drawn
// from r as well.
func Plans(indices []int, batch int, r *rand.Rand, aug data.Augmentation) []Plan {
	order := append([]int(nil), indices...)
	if r != nil {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	var plans []Plan
	for lo := 0; lo < len(order); lo += batch {
		hi := min(len(order), lo+batch)
		p := Plan{Index: make([]int32, hi-lo)}
		for i, j := range order[lo:hi] {
			p.Index[i] = int32(j)
		}
		if r != nil && aug.Pad > 0 {
			p.Crop = make([]int32, 2*(hi-lo))
			for i := range p.Crop {
				p.Crop[i] = int32(r.IntN(2*aug.Pad + 1))
			}
		}
		if r != nil && aug.Flip {
			p.Flip = make([]int32, hi-lo)
			for i := range p.Flip {
				p.Flip[i] = int32(r.IntN(2))
			}
		}
		plans = append(plans, p)
	}
	return plans
}

// Batch is a minibatch on the backend.
type Batch struct {
	X     *engine.Tensor // Float32 [B,H,W,C], normalised
	Y     *engine.Tensor // Int32 [B]
	Index []int32        // data set indices of the samples
}

// Free releases the batch's tensors.
func (bt *Batch) Free(b engine.Storage) {
	b.Free(bt.X)
	b.Free(bt.Y)
}

// Load assembles the batch of a plan on the backend; labels overrides the
// data set's labels when non-nil (an Int32 [N] tensor, for relabelled sets).
func (d *DeviceData) Load(b BatchOps, p Plan, aug data.Augmentation, labels *engine.Tensor) *Batch {
	n := len(p.Index)
	upload := func(v []int32, shape ...int) *engine.Tensor {
		if v == nil {
			return nil
		}
		t := b.Alloc(engine.Int32, shape...)
		b.Upload(t, v)
		return t
	}
	idx := upload(p.Index, n)
	crop := upload(p.Crop, n, 2)
	flip := upload(p.Flip, n)
	x := b.Alloc(engine.Float32, n, d.H, d.W, d.C)
	b.GatherImages(engine.GatherArgs{Src: d.Images, Index: idx, Crop: crop, Flip: flip, Pad: aug.Pad,
		Mean: d.Mean, Std: d.Std, Out: x})
	if labels == nil {
		labels = d.Labels
	}
	y := b.Alloc(engine.Int32, n)
	b.Gather(y, labels, idx)
	for _, t := range []*engine.Tensor{idx, crop, flip} {
		if t != nil {
			b.Free(t)
		}
	}
	return &Batch{X: x, Y: y, Index: p.Index}
}

// Batches iterates over the batches of a list of plans. On a backend that
// allows it, the next batch is assembled in a goroutine while the caller
// works on the current one; otherwise Next assembles it.
type Batches struct {
	d      *DeviceData
	b      BatchOps
	plans  []Plan
	aug    data.Augmentation
	labels *engine.Tensor
	i      int
	ahead  chan *Batch
	done   chan struct{}
}

// Iterate starts an iteration over plans; labels overrides the data set's
// labels when non-nil. The caller frees each batch and calls Close.
func (d *DeviceData) Iterate(b BatchOps, plans []Plan, aug data.Augmentation, labels *engine.Tensor) *Batches {
	it := &Batches{d: d, b: b, plans: plans, aug: aug, labels: labels}
	if c, ok := b.(engine.Concurrent); ok && c.ConcurrentSafe() {
		it.ahead = make(chan *Batch, 1)
		it.done = make(chan struct{})
		go func() {
			defer close(it.ahead)
			for _, p := range plans {
				bt := d.Load(b, p, aug, labels)
				select {
				case it.ahead <- bt:
				case <-it.done:
					bt.Free(b)
					return
				}
			}
		}()
	}
	return it
}

// Len is the number of batches.
func (it *Batches) Len() int { return len(it.plans) }

// Next returns the next batch, or false at the end.
func (it *Batches) Next() (*Batch, bool) {
	if it.ahead != nil {
		bt, ok := <-it.ahead
		return bt, ok
	}
	if it.i >= len(it.plans) {
		return nil, false
	}
	it.i++
	return it.d.Load(it.b, it.plans[it.i-1], it.aug, it.labels), true
}

// Close stops the iteration and frees batches assembled ahead.
func (it *Batches) Close() {
	if it.ahead == nil || it.done == nil {
		return
	}
	close(it.done)
	for bt := range it.ahead {
		bt.Free(it.b)
	}
	it.done = nil
}
