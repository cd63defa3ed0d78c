package mia

import "math"

// The SMO solver minimises the dual of the C-SVC,
//
//	f(α) = ½ αᵀQα − Σ α_i  subject to  Σ y_i α_i = 0,  0 ≤ α_i ≤ C_i,
//
// with Q_ij = y_i y_j K(x_i, x_j) and y_i = ±1. Instead of the gradient
// ∇f(α) = Qα − 1 it maintains g_i = −y_i ∇_i f(α), so that moving the pair
// (i, j) by a step t along the feasible direction α_i += y_i t,
// α_j −= y_j t changes f by −t(g_i − g_j) + ½ t² a_ij with
// a_ij = K_ii + K_jj − 2K_ij, and changes g by −t(K_i· − K_j·).
//
// The kernel values come from kernelCache, rounded to float32 as in libsvm;
// everything else is float64.
//
// An index may increase y_i α_i when it lies in
// I_up = {i : y_i = +1, α_i < C_i or y_i = −1, α_i > 0}, and decrease it when
// it lies in I_low = {i : y_i = +1, α_i > 0 or y_i = −1, α_i < C_i}. α is optimal
// when max_{I_up} g ≤ min_{I_low} g; the solver stops when the difference,
// the maximal violation, falls below the tolerance.

// tau replaces a non-positive curvature a_ij, as in libsvm.
const tau = 1e-12

// solver holds the state of one SMO run.
type solver struct {
	k     *kernelCache
	y     []float64 // labels, ±1
	c     []float64 // upper bounds of α
	alpha []float64
	g     []float64 // −y_i ∇_i f(α)
	// up[i] is 0 for i in I_up and −Inf otherwise; low[i] is 0 for i in
	// I_low and +Inf otherwise. Adding them to g turns the searches over
	// I_up and I_low into branch-free searches over all indices.
	up, low []float64
	iter    int
}

// newSolver returns a solver at α = 0 for the samples of k with labels y
// and upper bounds c.
func newSolver(k *kernelCache, y, c []float64) *solver {
	n := len(y)
	s := &solver{
		k:     k,
		y:     y,
		c:     c,
		alpha: make([]float64, n),
		g:     make([]float64, n),
		up:    make([]float64, n),
		low:   make([]float64, n),
	}
	for i := range n {
		s.g[i] = y[i] // ∇f(0) = −1
		s.setSets(i)
	}
	return s
}

// setSets recomputes the I_up and I_low membership of index i.
func (s *solver) setSets(i int) {
	a, pos := s.alpha[i], s.y[i] > 0
	s.up[i], s.low[i] = math.Inf(-1), math.Inf(1)
	if pos && a < s.c[i] || !pos && a > 0 {
		s.up[i] = 0
	}
	if pos && a > 0 || !pos && a < s.c[i] {
		s.low[i] = 0
	}
}

// solve runs SMO until the maximal violation is below tol or maxIter
// iterations have been done, and reports whether it converged.
func (s *solver) solve(tol float64, maxIter int) bool {
	i, gmax, gmin := s.extremes()
	for gmax-gmin >= tol {
		if s.iter >= maxIter {
			return false
		}
		s.iter++
		ki := s.k.row(i)
		j := s.second(i, ki)
		kj := s.k.row(j)
		s.step(i, j, ki, kj)
		i, gmax, gmin = s.extremes()
	}
	return true
}

// extremes returns the first index i maximising g over I_up, that maximum,
// and the minimum of g over I_low.
func (s *solver) extremes() (i int, gmax, gmin float64) {
	i, gmax, gmin = -1, math.Inf(-1), math.Inf(1)
	up, low := s.up[:len(s.g)], s.low[:len(s.g)]
	for t, v := range s.g {
		if u := v + up[t]; u > gmax {
			i, gmax = t, u
		}
		gmin = min(gmin, v+low[t])
	}
	return i, gmax, gmin
}

// second returns the partner j of the index i = argmax_{I_up} g by the
// second-order rule of Fan, Chen and Lin: among t in I_low with g_t < g_i,
// the first maximising (g_i − g_t)²/a_it, twice the decrease of f by an
// unconstrained step along the pair. ki is row i of the kernel matrix.
func (s *solver) second(i int, ki []float32) int {
	gi := s.g[i]
	j, best := -1, math.Inf(-1)
	low, ki := s.low[:len(s.g)], ki[:len(s.g)]
	for t, v := range s.g {
		v += low[t]
		if !(v < gi) {
			continue
		}
		b := gi - v
		// a_it = K_ii + K_tt − 2K_it = 2 − 2K_it for the RBF kernel.
		a := 2 - 2*float64(ki[t])
		if a <= 0 {
			a = tau
		}
		if obj := b * b / a; obj > best {
			j, best = t, obj
		}
	}
	return j
}

// step minimises f along the pair (i, j), i in I_up and j in I_low with
// g_i > g_j, within the box, and updates g. ki and kj are rows i and j of
// the kernel matrix.
func (s *solver) step(i, j int, ki, kj []float32) {
	a := 2 - 2*float64(ki[j])
	if a <= 0 {
		a = tau
	}
	oldI, oldJ := s.alpha[i], s.alpha[j]
	// Largest steps keeping α_i and α_j in their boxes, and the bounds
	// reached.
	capI, boundI := oldI, 0.0
	if s.y[i] > 0 {
		capI, boundI = s.c[i]-oldI, s.c[i]
	}
	capJ, boundJ := oldJ, 0.0
	if s.y[j] < 0 {
		capJ, boundJ = s.c[j]-oldJ, s.c[j]
	}
	t := min((s.g[i]-s.g[j])/a, capI, capJ)
	newI, newJ := oldI+s.y[i]*t, oldJ-s.y[j]*t
	if t == capI {
		newI = boundI
	}
	if t == capJ {
		newJ = boundJ
	}
	s.alpha[i], s.alpha[j] = newI, newJ
	s.setSets(i)
	s.setSets(j)

	// g_k −= y_i Δα_i K_ik + y_j Δα_j K_jk.
	ci, cj := s.y[i]*(newI-oldI), s.y[j]*(newJ-oldJ)
	g := s.g
	ki, kj = ki[:len(g)], kj[:len(g)]
	for k := range g {
		g[k] -= ci*float64(ki[k]) + cj*float64(kj[k])
	}
}

// intercept returns the constant term of the decision function: the mean
// of g over the free indices (0 < α_i < C_i), each index weighted by
// weight[i], or when there is none the midpoint of the interval the
// optimality conditions allow, [max g over bounded I_up, min g over bounded
// I_low]; libsvm's −rho.
func (s *solver) intercept(weight []float64) float64 {
	var sum, free float64
	lo, hi := math.Inf(-1), math.Inf(1)
	for i, v := range s.g {
		inUp, inLow := s.up[i] == 0, s.low[i] == 0
		switch {
		case inUp && inLow:
			sum += weight[i] * v
			free += weight[i]
		case inUp:
			lo = max(lo, v)
		case inLow:
			hi = min(hi, v)
		}
	}
	if free > 0 {
		return sum / free
	}
	return (lo + hi) / 2
}
