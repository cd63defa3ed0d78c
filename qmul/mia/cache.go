package mia

import "math"

// kernelCache computes rows of the RBF kernel matrix of a training set and
// keeps the most recently used ones within a memory budget.
type kernelCache struct {
	x     []float64 // training samples, row-major n×d
	n, d  int
	gamma float64

	rows  [][]float64 // rows[s] is the row stored in slot s
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
	for i := range slot {
		slot[i] = -1
	}
	return &kernelCache{
		x: x, n: n, d: d, gamma: gamma,
		slot:     slot,
		head:     -1,
		tail:     -1,
		maxSlots: min(n, max(2, budget/(8*n))),
	}
}

// row returns row i of the kernel matrix, K(x_i, x_k) for k = 0, …, n−1.
// The slice belongs to the cache: it stays valid until two other rows have
// been requested, so the last two rows returned can be used together.
func (c *kernelCache) row(i int) []float64 {
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
		c.rows = append(c.rows, make([]float64, c.n))
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

// compute writes K(x_i, x_k) into dst[k] for every sample k.
func (c *kernelCache) compute(i int, dst []float64) {
	d, g := c.d, c.gamma
	xi := c.x[i*d : (i+1)*d]
	dst = dst[:c.n]
	if d == 1 {
		// The common case of one feature, without the inner loop.
		a := xi[0]
		for k, b := range c.x[:c.n] {
			t := a - b
			dst[k] = math.Exp(-g * t * t)
		}
		return
	}
	for k := range dst {
		dst[k] = math.Exp(-g * sqDist(xi, c.x[k*d:]))
	}
}
