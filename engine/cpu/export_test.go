package cpu

// NewReversed is New with parallel's chunks run one at a time, last first.
func NewReversed(threads int) *Backend {
	b := New(threads)
	b.reversed = true
	return b
}
