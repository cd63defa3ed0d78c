package mia

import "math"

// kernelCache computes rows of the RBF kernel matrix of a training set and
// keeps the most recently used ones within a memory budget.
//
// Like libsvm, it evaluates K(x_i, x_k) as exp(−γ(‖x_i‖² + ‖x_k‖² − 2x_i·x_k))
// in float64 and stores the value rounded to float32. The rounding is what
// makes the attacker agree with scikit-learn's where features differ by
// little: confidences that differ only in their last float32 bits have
// kernel values that all round to 1, and libsvm then trains on a problem in
// which the samples cannot be told apart.
type kernelCache struct {
	x     []float64 // training samples, row-major n×d
	sq    []float64 // sq[i] = ‖x_i‖²
	n, d  int
	gamma float64

	rows  [][]float32 // rows[s] is the row stored in slot s
	owner []int       // owner[s] is the sample whose row slot s holds
	slot  []int       // slot[i] is the slot holding row i, or −1
	// The slots form a doubly linked list in order of use, most recent
	// first; −1 ends it.
	prev, next []int
	head, tail int
	maxSlots   int

	hits, misses int // statistics for tests
}

// newKernelCache returns a cache for the n = len(x)/d samples of x that
// holds as many rows as fit in budget bytes, and at least two.
func newKernelCache(x []float64, d int, gamma float64, budget int) *kernelCache {
	n := len(x) / d
	slot := make([]int, n)
	sq := make([]float64, n)
	for i := range slot {
		slot[i] = -1
		sq[i] = dot(x[i*d:(i+1)*d], x[i*d:(i+1)*d])
	}
	return &kernelCache{
		x: x, sq: sq, n: n, d: d, gamma: gamma,
		slot:     slot,
		head:     -1,
		tail:     -1,
		maxSlots: min(n, max(2, budget/(4*n))),
	}
}

// row returns row i of the kernel matrix, K(x_i, x_k) for k = 0, …, n−1.
// The slice belongs to the cache: it stays valid until two other rows have
// been requested, so the last two rows returned can be used together.
func (c *kernelCache) row(i int) []float32 {
	if s := c.slot[i]; s >= 0 {
		c.hits++
		c.unlink(s)
		c.pushFront(s)
		return c.rows[s]
	}
	c.misses++
	var s int
	if len(c.rows) < c.maxSlots {
		s = len(c.rows)
		c.rows = append(c.rows, make([]float32, c.n))
		c.owner = append(c.owner, i)
		c.prev = append(c.prev, -1)
		c.next = append(c.next, -1)
	} else {
		s = c.tail
		c.unlink(s)
		c.slot[c.owner[s]] = -1
		c.owner[s] = i
	}
	c.slot[i] = s
	c.pushFront(s)
	c.compute(i, c.rows[s])
	return c.rows[s]
}

// unlink removes slot s from the use list.
func (c *kernelCache) unlink(s int) {
	p, q := c.prev[s], c.next[s]
	if p >= 0 {
		c.next[p] = q
	} else {
		c.head = q
	}
	if q >= 0 {
		c.prev[q] = p
	} else {
		c.tail = p
	}
	c.prev[s], c.next[s] = -1, -1
}

// pushFront makes slot s the most recently used.
func (c *kernelCache) pushFront(s int) {
	c.prev[s], c.next[s] = -1, c.head
	if c.head >= 0 {
		c.prev[c.head] = s
	} else {
		c.tail = s
	}
	c.head = s
}

// compute writes K(x_i, x_k) into dst[k] for every sample k, computed as
// libsvm's Kernel::kernel_rbf does.
func (c *kernelCache) compute(i int, dst []float32) {
	d, g := c.d, c.gamma
	xi, sqi := c.x[i*d:(i+1)*d], c.sq[i]
	dst = dst[:c.n]
	if d == 1 {
		// The common case of one feature, without the inner loop.
		a := xi[0]
		for k, b := range c.x[:c.n] {
			dst[k] = float32(math.Exp(-g * (sqi + c.sq[k] - 2*float64(a*b))))
		}
		return
	}
	for k := range dst {
		dst[k] = float32(math.Exp(-g * (sqi + c.sq[k] - 2*dot(xi, c.x[k*d:]))))
	}
}

// dot returns the inner product of u and v, which is at least as long as u.
func dot(u, v []float64) float64 {
	v = v[:len(u)]
	var s float64
	for i, a := range u {
		s += float64(a * v[i]) // the conversion forbids a fused multiply-add
	}
	return s
}
