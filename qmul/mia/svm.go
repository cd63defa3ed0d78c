// Package mia implements the membership-inference attack (MIA) with which
// machine unlearning is evaluated in the SalUn and Unlearn-Sparse code bases.
//
// An attacker is a support-vector classifier with the RBF kernel trained on
// shadow data: features of samples the model was trained on (members, label 1)
// against features of held-out samples (non-members, label 0). MIA-efficacy is
// the percentage of forget-set samples the attacker labels as non-members; see
// Efficacy. Features computes the attack features from softmax outputs.
//
// The classifier, SVC, is an exact C-SVC solved by sequential minimal
// optimisation (SMO) with the second-order working-set selection of Fan, Chen
// and Lin (2005), the algorithm of libsvm and hence of scikit-learn's
// sklearn.svm.SVC. With the same C, gamma and tolerance the two produce the
// same classifier up to the stopping tolerance. Where the attack is
// degenerate — features equal or nearly equal, decision values of exactly 0 —
// it follows libsvm's arithmetic so that it classifies as scikit-learn does:
// label 0 is libsvm's first class (+1 inside the solver), kernel values are
// computed as libsvm computes them and rounded to float32 for training, and
// the decision function is summed in libsvm's order with a value of exactly
// 0 predicting label 1. Unlike libsvm, the solver does not shrink the problem
// during the iterations and gives each set of training samples equal in
// features and label a single dual variable, which is exact and makes the
// many equal confidences of the attack cheap. Training is sequential and
// deterministic; PredictAll and Efficacy predict concurrently.
package mia

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Default values of the SVC fields left zero.
const (
	// DefaultTol is the stopping tolerance on the maximal violation of the
	// optimality conditions, libsvm's and scikit-learn's default.
	DefaultTol = 1e-3
	// DefaultCacheBytes is the memory budget of the kernel-row cache,
	// scikit-learn's default cache_size of 200 MB.
	DefaultCacheBytes = 200 << 20
)

// ErrNotConverged reports that SMO stopped at the iteration limit before
// the optimality conditions held within the tolerance.
var ErrNotConverged = errors.New("mia: SVC did not converge")

// SVC configures a binary C-support-vector classifier with the radial basis
// function kernel K(u, v) = exp(−Gamma·‖u − v‖²). A zero field other than C
// selects the default documented on it.
type SVC struct {
	// C is the upper bound on the dual coefficients (the inverse strength of
	// the regularisation); it must be positive.
	C float64
	// Gamma is the kernel coefficient; zero selects 1/n_features, which is
	// scikit-learn's gamma="auto".
	Gamma float64
	// Tol is the stopping tolerance on the maximal violation of the
	// Karush-Kuhn-Tucker conditions; zero selects DefaultTol.
	Tol float64
	// CacheBytes bounds the memory held by cached kernel rows; zero selects
	// DefaultCacheBytes. At least two rows are cached whatever the bound.
	CacheBytes int
	// MaxIter bounds the number of SMO iterations; zero selects libsvm's
	// limit of max(10,000,000, 100·n) for n training samples.
	MaxIter int
}

// AttackSVC returns the attacker configuration of the SalUn evaluation,
// scikit-learn's SVC(C=3, gamma="auto", kernel="rbf").
func AttackSVC() SVC { return SVC{C: 3} }

// Model is a trained binary classifier. Its decision function is
//
//	f(x) = Σ_s DualCoef[s]·exp(−Gamma·‖SupportVectors[s] − x‖²) + Intercept
//
// and it predicts label 1 where f(x) ≥ 0 and label 0 where f(x) < 0, the
// conventions of scikit-learn's SVC.decision_function, dual_coef_ and
// predict for the classes [0, 1]. (libsvm decides on the negated value,
// predicting its first class, 0, where that is positive; a value of exactly
// 0 therefore predicts 1.)
type Model struct {
	// Support holds the training-set indices of the support vectors, the
	// samples with a nonzero dual coefficient: those of label 0 in
	// increasing order, then those of label 1, the order of scikit-learn's
	// support_.
	Support []int
	// SupportVectors holds copies of the support vectors, in the order of
	// Support.
	SupportVectors [][]float64
	// DualCoef holds y_s·α_s for each support vector, where α_s ∈ (0, C] is
	// the dual variable and y_s is +1 for label 1 and −1 for label 0.
	// Training samples equal in features and label have equal α.
	DualCoef []float64
	// Intercept is the constant term of the decision function, libsvm's
	// rho.
	Intercept float64
	// Gamma is the kernel coefficient the model was trained with.
	Gamma float64
	// NFeatures is the number of features of the training samples.
	NFeatures int
	// NIter is the number of SMO iterations performed.
	NIter int
}

// Fit trains a classifier on the samples x with labels y, each 0 or 1. All
// samples must have the same, nonzero, number of features, and every feature
// must be finite.
//
// When all labels are equal, a case scikit-learn rejects, Fit returns a model
// without support vectors whose intercept, +1 or −1, predicts that label
// everywhere.
//
// If the iteration limit is reached, Fit returns the model obtained so far
// together with an error wrapping ErrNotConverged.
func (s SVC) Fit(x [][]float64, y []int) (*Model, error) {
	m, err := s.fit(x, y)
	if err != nil {
		return m, fmt.Errorf("mia: fit: %w", err)
	}
	return m, nil
}

// fit is Fit with errors not prefixed by the function.
func (s SVC) fit(x [][]float64, y []int) (*Model, error) {
	d, err := s.check(x, y)
	if err != nil {
		return nil, err
	}
	gamma := s.Gamma
	if gamma == 0 {
		gamma = 1 / float64(d)
	}
	p := merge(x, y)
	if p.npos == 0 || p.npos == len(x) {
		// One class only: the dual problem has the single solution α = 0
		// and any intercept of the right sign is optimal.
		return &Model{Intercept: float64(2*y[0] - 1), Gamma: gamma, NFeatures: d}, nil
	}
	tol := s.Tol
	if tol == 0 {
		tol = DefaultTol
	}
	cacheBytes := s.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	maxIter := s.MaxIter
	if maxIter == 0 {
		maxIter = max(10_000_000, 100*len(x))
	}
	bound := make([]float64, len(p.count))
	for v, m := range p.count {
		bound[v] = s.C * m
	}
	sol := newSolver(newKernelCache(p.x, d, gamma, cacheBytes), p.y, bound)
	converged := sol.solve(tol, maxIter)

	m := &Model{Intercept: -sol.intercept(p.count), Gamma: gamma, NFeatures: d, NIter: sol.iter}
	m.setSupport(x, y, p, sol.alpha, bound, s.C)
	if !converged {
		return m, fmt.Errorf("%w after %d iterations", ErrNotConverged, sol.iter)
	}
	return m, nil
}

// check reports parameters or samples Fit cannot use, and returns the
// number of features.
func (s SVC) check(x [][]float64, y []int) (int, error) {
	if len(x) == 0 {
		return 0, errors.New("no training samples")
	}
	if len(x) != len(y) {
		return 0, fmt.Errorf("%d samples but %d labels", len(x), len(y))
	}
	if !(s.C > 0) || math.IsInf(s.C, 0) {
		return 0, fmt.Errorf("C = %v, want a positive finite value", s.C)
	}
	if !(s.Gamma >= 0) || math.IsInf(s.Gamma, 0) {
		return 0, fmt.Errorf("gamma = %v, want a nonnegative finite value", s.Gamma)
	}
	if !(s.Tol >= 0) || math.IsInf(s.Tol, 0) {
		return 0, fmt.Errorf("tol = %v, want a nonnegative finite value", s.Tol)
	}
	if s.CacheBytes < 0 || s.MaxIter < 0 {
		return 0, fmt.Errorf("negative cache size %d or iteration limit %d", s.CacheBytes, s.MaxIter)
	}
	d := len(x[0])
	if d == 0 {
		return 0, errors.New("samples have no features")
	}
	if err := checkSamples(x, d); err != nil {
		return 0, err
	}
	for i, l := range y {
		if l != 0 && l != 1 {
			return 0, fmt.Errorf("label %d of sample %d, want 0 or 1", l, i)
		}
	}
	return d, nil
}

// setSupport fills m's support vectors and dual coefficients from the
// solution alpha of the merged problem p: each variable's α is shared
// equally among its samples. The solver's labels are libsvm's, +1 for
// label 0, so the dual coefficients of scikit-learn's convention are the
// negated ones; label-0 support vectors come first, as libsvm orders them.
func (m *Model) setSupport(x [][]float64, y []int, p merged, alpha, bound []float64, c float64) {
	for _, label := range []int{0, 1} {
		for i, v := range p.variable {
			a := alpha[v]
			if y[i] != label || a == 0 {
				continue
			}
			switch a {
			case bound[v]:
				a = c
			default:
				a /= p.count[v]
			}
			m.Support = append(m.Support, i)
			m.DualCoef = append(m.DualCoef, -p.y[v]*a)
		}
	}
	d := m.NFeatures
	svs := make([]float64, len(m.Support)*d)
	m.SupportVectors = make([][]float64, len(m.Support))
	for k, i := range m.Support {
		m.SupportVectors[k] = svs[k*d : (k+1)*d : (k+1)*d]
		copy(m.SupportVectors[k], x[i])
	}
}

// merged is a training set in which the samples equal in features and
// label have been merged into one dual variable.
//
// Such samples have equal rows in the kernel matrix, so the dual objective
// depends only on the sum of their α, which lies in [0, m·C] for m samples.
// Solving for the sums and sharing each equally is exact: the result is a
// solution of the original dual problem, with the same maximal violation of
// the optimality conditions, since samples sharing a sum are then alike in
// gradient and bounds. Confidences close to 1, rounded to float32, have
// many such duplicates.
type merged struct {
	x        []float64 // the distinct samples, row-major
	y        []float64 // their labels in libsvm's convention: +1 for 0, −1 for 1
	count    []float64 // the number of samples merged into each variable
	variable []int     // variable[i] is the variable of sample i
	npos     int       // the number of samples with label 1
}

// merge merges the samples of x equal in features (bit for bit) and label y,
// numbering the variables in order of first occurrence.
func merge(x [][]float64, y []int) merged {
	p := merged{variable: make([]int, len(x))}
	index := make(map[string]int)
	var key []byte
	for i, row := range x {
		key = append(key[:0], byte(y[i]))
		for _, v := range row {
			key = binary.LittleEndian.AppendUint64(key, math.Float64bits(v))
		}
		v, ok := index[string(key)]
		if !ok {
			v = len(p.y)
			index[string(key)] = v
			p.x = append(p.x, row...)
			p.y = append(p.y, float64(1-2*y[i]))
			p.count = append(p.count, 0)
		}
		p.count[v]++
		p.variable[i] = v
		p.npos += y[i]
	}
	return p
}

// checkSamples checks that the rows of x have d features each, all finite.
func checkSamples(x [][]float64, d int) error {
	for i, row := range x {
		if len(row) != d {
			return fmt.Errorf("sample %d has %d features, want %d", i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("feature %d of sample %d is %v", j, i, v)
			}
		}
	}
	return nil
}

// Decision returns the value of the decision function at x, which must have
// NFeatures features.
//
// It is computed with the operations of libsvm's svm_predict_values, in the
// same order, and negated at the end (negation rounds exactly), so that its
// sign is libsvm's where the sum cancels to a few units in the last place:
// with confidences that differ only in their last float32 bits the decision
// values are of order 1e−14 and their sign is a matter of rounding.
func (m *Model) Decision(x []float64) float64 {
	var sum float64
	for s, sv := range m.SupportVectors {
		sum += float64(-m.DualCoef[s] * math.Exp(-m.Gamma*sqDist(sv, x)))
	}
	return -(sum - m.Intercept)
}

// Predict returns the label, 0 or 1, the model assigns to x: 1 where the
// decision value is positive or zero.
func (m *Model) Predict(x []float64) int {
	if m.Decision(x) >= 0 {
		return 1
	}
	return 0
}

// PredictAll returns the labels the model assigns to the rows of x,
// computed concurrently. Every row must have NFeatures finite features.
func (m *Model) PredictAll(x [][]float64) ([]int, error) {
	out, err := m.predictAll(x)
	if err != nil {
		return nil, fmt.Errorf("mia: predict: %w", err)
	}
	return out, nil
}

// predictAll is PredictAll with errors not prefixed by the function.
func (m *Model) predictAll(x [][]float64) ([]int, error) {
	if err := checkSamples(x, m.NFeatures); err != nil {
		return nil, err
	}
	out := make([]int, len(x))
	cost := 8 * max(len(m.SupportVectors), 1) * m.NFeatures
	parallel(workers(len(x), cost), len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = m.Predict(x[i])
		}
	})
	return out, nil
}

// sqDist returns the squared Euclidean distance between u and v, which have
// the same length.
func sqDist(u, v []float64) float64 {
	v = v[:len(u)]
	var s float64
	for i, a := range u {
		d := a - v[i]
		s += float64(d * d) // the conversion forbids a fused multiply-add
	}
	return s
}

// minWork is the number of operations worth starting a goroutine for. Tests
// lower it to run the concurrent code on small inputs.
var minWork = 1 << 16

// workers returns how many goroutines should share n items of about cost
// operations each: one per processor, but only as many as the work repays.
func workers(n, cost int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n*max(cost, 1)/minWork, n))
}

// parallel splits [0, n) into p consecutive parts and calls body(lo, hi) for
// each part concurrently, returning when all are done.
func parallel(p, n int, body func(lo, hi int)) {
	var wg sync.WaitGroup
	for w := 1; w < p; w++ {
		wg.Go(func() { body(w*n/p, (w+1)*n/p) })
	}
	body(0, n/p)
	wg.Wait()
}
