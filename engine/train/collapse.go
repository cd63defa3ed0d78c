package train

import (
	"errors"
	"fmt"
	"math"
)

// ErrCollapsed is returned (wrapped) when training collapses: its loss
// rises above that of chance after the model had learnt.
var ErrCollapsed = errors.New("training collapsed")

// CollapseGuard detects training that collapses to chance. ln(classes) is
// the cross-entropy of a model that finds every class equally likely; a
// model that has learnt something has a lower loss, and one whose mean loss
// over a whole epoch is back above it has lost what it had learnt, usually
// to a learning rate too high for it. The guard reports the first epoch
// whose mean loss exceeds ln(classes) after an earlier epoch's was below
// half of it, that is after the model had learnt: the geometric mean of its
// probability for the true class was above 1/√classes. (A loss that merely
// hovers about ln(classes) in the first epochs, dipping just below and
// rising just above it before the model learns anything, as quantized
// networks sometimes do, is not a collapse.)
//
// It watches losses that training lowers: the cross-entropy of samples
// against their own (or, for relabelling methods, their assigned) labels.
// The zero value is not usable; see NewCollapseGuard.
type CollapseGuard struct {
	chance  float64
	learned bool // an epoch's mean loss was below half of chance
}

// NewCollapseGuard returns a guard for a classifier of the given number of
// classes, at least 2.
func NewCollapseGuard(classes int) *CollapseGuard {
	return &CollapseGuard{chance: math.Log(float64(classes))}
}

// Epoch takes the mean loss of a finished epoch (1-based) trained at
// learning rate lr. It returns an error wrapping ErrCollapsed when the loss
// is above ln(classes) and an earlier epoch's was below half of it.
func (g *CollapseGuard) Epoch(epoch int, lr, loss float64) error {
	switch {
	case loss < g.chance/2:
		g.learned = true
	case loss > g.chance && g.learned:
		return fmt.Errorf("epoch %d at lr %g: %w: the mean loss %.4f is above ln(classes) = %.4f, the loss of guessing, "+
			"after earlier epochs had brought it below %.4f; lower the learning rate, or pass --allow-collapse to go on",
			epoch, lr, ErrCollapsed, loss, g.chance, g.chance/2)
	}
	return nil
}
