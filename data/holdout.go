package data

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// holdOutStream is the PCG stream HoldOut draws from, so that its choices
// do not follow those of other generators seeded alike.
const holdOutStream = 0x686f6c646f7574 // "holdout"

// HoldOut splits the indices 0..ds.N-1 into a training and a validation
// part, class by class: of each class's count samples, floor(frac*count)
// (computed with a tolerance of 1e-9, so that 0.29 of 100 is 29) chosen
// uniformly at random go to val and the rest to train. The choice is
// determined by seed, through math/rand/v2's PCG with a fixed stream. Both
// lists are sorted. frac must be in [0, 1); 0 puts every sample in train.
func HoldOut(ds *Dataset, frac float64, seed uint64) (train, val []int, err error) {
	name := cmp.Or(ds.Name, "data set")
	if !(frac >= 0 && frac < 1) {
		return nil, nil, fmt.Errorf("%s: hold-out fraction %v out of range [0, 1)", name, frac)
	}
	byClass := make([][]int, ds.Classes)
	for i, l := range ds.Labels {
		if l < 0 || int(l) >= ds.Classes {
			return nil, nil, fmt.Errorf("%s: label %d of image %d out of range [0, %d)", name, l, i, ds.Classes)
		}
		byClass[l] = append(byClass[l], i)
	}
	r := rand.New(rand.NewPCG(seed, holdOutStream))
	train = make([]int, 0, len(ds.Labels))
	for _, idx := range byClass {
		k := int(math.Floor(frac*float64(len(idx)) + 1e-9))
		// A partial Fisher-Yates shuffle puts a uniform random k-subset
		// first.
		for i := range k {
			j := i + r.IntN(len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		val = append(val, idx[:k]...)
		train = append(train, idx[k:]...)
	}
	slices.Sort(train)
	slices.Sort(val)
	return train, val, nil
}
