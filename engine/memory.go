package engine

// Storage allocates tensors on a backend and copies them to and from the
// host: the memory family (engine/cpu/memory.go, cuda/memory.go).
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
