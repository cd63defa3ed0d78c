package mia

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// rbf returns exp(−gamma·‖u − v‖²).
func rbf(gamma float64, u, v []float64) float64 { return math.Exp(-gamma * sqDist(u, v)) }

// TestFitClosedForm checks Fit on problems whose dual solution and
// intercept are derived by hand.
func TestFitClosedForm(t *testing.T) {
	e1 := math.Exp(-1)
	// Two points 0 (label 1) and 1 (label 0) with gamma 1: α_1 = α_2 = α by
	// the equality constraint, and f(α) = α²(1 − k) − 2α with k = K(0, 1) is
	// least at α = 1/(1 − k), within the box for C = 3; by symmetry b = 0.
	a2 := 1 / (1 - e1)
	// Points 0 and 0.3: 1/(1 − k) = 11.6 > C, so α = C and both are bounded;
	// the intercept is the midpoint of g_1 = 1 − C(1 − k) and
	// g_2 = −(1 − C(1 − k)), which is 0.
	// XOR: (±1, ±1) labelled by the sign of the product, gamma 1/2. By
	// symmetry all α are equal and b = 0; each point's margin condition
	// α(1 − 2K(d² = 4) + K(d² = 8)) = 1 gives α = 1/(1 − e^−2)².
	aXOR := 1 / ((1 - math.Exp(-2)) * (1 - math.Exp(-2)))
	// −1, 0, 1 labelled 0, 1, 0 with gamma 1 and k = e^−1: by symmetry the
	// outer points share α = β and the centre has 2β. All free, the margin
	// conditions of the centre, 2β(1 − k) + b = 1, and of an outer point,
	// β(1 − 2k + k⁴) − b = 1, give β = 2/(3 − 4k + k⁴), b = 1 − 2β(1 − k).
	// With C = 2 < 2β the centre is bounded at C, β = 1, and an outer
	// point's condition gives b = k⁴ − 2k.
	beta := 2 / (3 - 4*e1 + math.Pow(e1, 4))
	tests := []struct {
		name     string
		svc      SVC
		x        [][]float64
		y        []int
		dualCoef []float64 // by sample, 0 for a non-support vector
		b        float64
	}{
		{"two free", SVC{C: 3}, [][]float64{{0}, {1}}, []int{1, 0}, []float64{a2, -a2}, 0},
		{"two bounded", SVC{C: 3}, [][]float64{{0}, {0.3}}, []int{1, 0}, []float64{3, -3}, 0},
		{"xor", SVC{C: 3}, [][]float64{{1, 1}, {1, -1}, {-1, 1}, {-1, -1}}, []int{1, 0, 0, 1},
			[]float64{aXOR, -aXOR, -aXOR, aXOR}, 0},
		{"three free", SVC{C: 3}, [][]float64{{-1}, {0}, {1}}, []int{0, 1, 0},
			[]float64{-beta, 2 * beta, -beta}, 1 - 2*beta*(1-e1)},
		{"three centre bounded", SVC{C: 2}, [][]float64{{-1}, {0}, {1}}, []int{0, 1, 0},
			[]float64{-1, 2, -1}, math.Pow(e1, 4) - 2*e1},
		// Equal samples share their dual variable's sum equally. With 0
		// duplicated, the sums solve the two-point problem.
		{"duplicates free", SVC{C: 3}, [][]float64{{0}, {1}, {0}}, []int{1, 0, 1},
			[]float64{a2 / 2, -a2, a2 / 2}, 0},
		// With 0 and 0.3 the sum for 0, within [0, 2C], is free at C while
		// α = C for 0.3 is bounded; the margin condition of 0, 1 − C(1 − k)
		// = b with k = e^−0.09, gives the intercept.
		{"duplicates bounded", SVC{C: 3}, [][]float64{{0}, {0}, {0.3}}, []int{1, 1, 0},
			[]float64{1.5, 1.5, -3}, 1 - 3*(1-math.Exp(-0.09))},
		// Gamma 2 explicitly: the two-point solution with k = e^−2.
		{"explicit gamma", SVC{C: 3, Gamma: 2}, [][]float64{{0}, {1}}, []int{0, 1},
			[]float64{-1 / (1 - math.Exp(-2)), 1 / (1 - math.Exp(-2))}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := tt.svc
			svc.Tol = 1e-12
			m, err := svc.Fit(tt.x, tt.y)
			if err != nil {
				t.Fatal(err)
			}
			checkModel(t, m, tt.x, tt.dualCoef, tt.b)
		})
	}
}

// checkModel compares m with the expected dual coefficients by sample and
// intercept, and checks its decision function at the training samples.
func checkModel(t *testing.T, m *Model, x [][]float64, dualCoef []float64, b float64) {
	t.Helper()
	const eps = 1e-6
	// Label 0 (negative coefficients) first, as in scikit-learn's support_.
	var support []int
	for i, c := range dualCoef {
		if c < 0 {
			support = append(support, i)
		}
	}
	for i, c := range dualCoef {
		if c > 0 {
			support = append(support, i)
		}
	}
	if !slices.Equal(m.Support, support) {
		t.Fatalf("support %v, want %v", m.Support, support)
	}
	for s, i := range m.Support {
		if math.Abs(m.DualCoef[s]-dualCoef[i]) > eps {
			t.Errorf("dual coefficient of sample %d = %.9g, want %.9g", i, m.DualCoef[s], dualCoef[i])
		}
		if !slices.Equal(m.SupportVectors[s], x[i]) {
			t.Errorf("support vector %d = %v, want %v", s, m.SupportVectors[s], x[i])
		}
	}
	if math.Abs(m.Intercept-b) > eps {
		t.Errorf("intercept %.9g, want %.9g", m.Intercept, b)
	}
	for i, xi := range x {
		want := b
		for j, c := range dualCoef {
			want += c * rbf(m.Gamma, x[j], xi)
		}
		if got := m.Decision(xi); math.Abs(got-want) > eps {
			t.Errorf("decision at sample %d = %.9g, want %.9g", i, got, want)
		}
	}
}

// TestFitAllBounded checks the intercept when no dual variable is free:
// the midpoint of the interval the optimality conditions allow.
func TestFitAllBounded(t *testing.T) {
	// With C = 0.1 the four overlapping points are all bounded at C, and
	// then g_i = y_i − C Σ_j y_j K_ij (y = ±1). α = C is optimal if
	// max g over label 0 (the bounded I_up) ≤ min g over label 1 (the
	// bounded I_low), and b is the midpoint of the two.
	const c = 0.1
	x := [][]float64{{0}, {0.1}, {0.15}, {0.4}}
	y := []int{1, 0, 1, 0}
	lo, hi := math.Inf(-1), math.Inf(1)
	for i := range x {
		yi := float64(2*y[i] - 1)
		g := yi
		for j := range x {
			g -= c * float64(2*y[j]-1) * rbf(1, x[i], x[j])
		}
		if y[i] == 0 {
			lo = max(lo, g)
		} else {
			hi = min(hi, g)
		}
	}
	if lo > hi {
		t.Fatalf("α = C is not optimal: %g > %g", lo, hi)
	}
	m, err := SVC{C: c, Tol: 1e-12}.Fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, x, []float64{c, -c, c, -c}, (lo+hi)/2)
	if m.Intercept == 0 {
		t.Errorf("intercept 0; the problem should be asymmetric")
	}
}

// TestFitOneClass checks the models of single-class training sets.
func TestFitOneClass(t *testing.T) {
	for _, label := range []int{0, 1} {
		x := [][]float64{{0.5}, {0.9}, {1}}
		m, err := AttackSVC().Fit(x, []int{label, label, label})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Support) != 0 {
			t.Errorf("label %d: %d support vectors, want 0", label, len(m.Support))
		}
		for _, xi := range [][]float64{{-5}, {0.5}, {7}} {
			if got := m.Predict(xi); got != label {
				t.Errorf("label %d: Predict(%v) = %d", label, xi, got)
			}
		}
		pred, err := m.PredictAll(x)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(pred, []int{label, label, label}) {
			t.Errorf("label %d: PredictAll = %v", label, pred)
		}
	}
}

// TestFitErrors checks that invalid input is rejected with a descriptive
// error.
func TestFitErrors(t *testing.T) {
	x := [][]float64{{0}, {1}}
	y := []int{0, 1}
	tests := []struct {
		name string
		svc  SVC
		x    [][]float64
		y    []int
		want string
	}{
		{"empty", AttackSVC(), nil, nil, "no training samples"},
		{"length mismatch", AttackSVC(), x, []int{0}, "2 samples but 1 labels"},
		{"no features", AttackSVC(), [][]float64{{}, {}}, y, "no features"},
		{"ragged", AttackSVC(), [][]float64{{0}, {1, 2}}, y, "sample 1 has 2 features, want 1"},
		{"NaN", AttackSVC(), [][]float64{{0}, {math.NaN()}}, y, "feature 0 of sample 1 is NaN"},
		{"Inf", AttackSVC(), [][]float64{{math.Inf(-1)}, {1}}, y, "feature 0 of sample 0 is -Inf"},
		{"label", AttackSVC(), x, []int{0, 2}, "label 2 of sample 1"},
		{"zero C", SVC{}, x, y, "C = 0"},
		{"NaN C", SVC{C: math.NaN()}, x, y, "C = NaN"},
		{"negative gamma", SVC{C: 1, Gamma: -1}, x, y, "gamma = -1"},
		{"negative tol", SVC{C: 1, Tol: -1}, x, y, "tol = -1"},
		{"negative cache", SVC{C: 1, CacheBytes: -1}, x, y, "negative cache size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.svc.Fit(tt.x, tt.y)
			if err == nil {
				t.Fatalf("Fit succeeded with %d support vectors", len(m.Support))
			}
			if !strings.HasPrefix(err.Error(), "mia: fit: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestPredictAllErrors checks that PredictAll rejects invalid samples.
func TestPredictAllErrors(t *testing.T) {
	m, err := AttackSVC().Fit([][]float64{{0}, {1}}, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		x    [][]float64
		want string
	}{
		{"width", [][]float64{{0}, {0, 1}}, "sample 1 has 2 features, want 1"},
		{"NaN", [][]float64{{math.NaN()}}, "feature 0 of sample 0 is NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.PredictAll(tt.x); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestFitNotConverged checks the iteration limit.
func TestFitNotConverged(t *testing.T) {
	x, y := shadowSample(200)
	m, err := SVC{C: 3, MaxIter: 5}.Fit(x, y)
	if !errors.Is(err, ErrNotConverged) {
		t.Fatalf("error %v, want ErrNotConverged", err)
	}
	if m == nil || m.NIter != 5 {
		t.Fatalf("model %+v, want one after 5 iterations", m)
	}
}

// shadowSample returns the first n/2 members and the first n/2 non-members
// of the benchmark problem.
func shadowSample(n int) ([][]float64, []int) {
	x, y := shadow20k()
	x = append(x[:n/2:n/2], x[10000:10000+n/2]...)
	y = append(y[:n/2:n/2], y[10000:10000+n/2]...)
	return x, y
}

// TestFitCacheSize checks that the model does not depend on the size of
// the kernel cache.
func TestFitCacheSize(t *testing.T) {
	x, y := shadowSample(4000)
	ref, err := AttackSVC().Fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	for _, cacheBytes := range []int{1, 1 << 20} {
		svc := AttackSVC()
		svc.CacheBytes = cacheBytes
		m, err := svc.Fit(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if m.NIter != ref.NIter || m.Intercept != ref.Intercept ||
			!slices.Equal(m.Support, ref.Support) || !slices.Equal(m.DualCoef, ref.DualCoef) {
			t.Errorf("cache of %d bytes: %d iterations, intercept %v, %d support vectors; want %d, %v, %d",
				cacheBytes, m.NIter, m.Intercept, len(m.Support), ref.NIter, ref.Intercept, len(ref.Support))
		}
	}
}

// TestPredictAll checks that PredictAll agrees with Predict whatever the
// number of goroutines.
func TestPredictAll(t *testing.T) {
	x, y := shadowSample(400)
	m, err := AttackSVC().Fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, len(x))
	for i, xi := range x {
		want[i] = m.Predict(xi)
	}
	defer func(w int) { minWork = w }(minWork)
	minWork = 1
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		got, err := m.PredictAll(x)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d processors: PredictAll differs from Predict", procs)
		}
	}
}

// TestKernelCache checks the rows and the least-recently-used eviction.
func TestKernelCache(t *testing.T) {
	x := []float64{0, 0, 1, 1, 0, 0.5, 2, 3}
	const d, gamma = 2, 0.5
	n := len(x) / d
	c := newKernelCache(x, d, gamma, 2*4*n) // a budget of two rows
	for k, r := range []struct {
		i   int
		hit bool
	}{
		{0, false}, {0, true}, {1, false}, {2, false}, // evicts row 0
		{1, true}, {0, false}, // evicts row 2
		{2, false}, {0, true}, {3, false}, // evicts rows 1 and 2
	} {
		hits, misses := c.hits, c.misses
		row := c.row(r.i)
		if hit := c.hits > hits; hit != r.hit || c.misses+c.hits != hits+misses+1 {
			t.Errorf("request %d (row %d): hit %v, want %v", k, r.i, hit, r.hit)
		}
		for j := range n {
			// libsvm's formula, rounded to float32 like its Qfloat.
			a, b := x[r.i*d:(r.i+1)*d], x[j*d:(j+1)*d]
			want := float32(math.Exp(-gamma * (dot(a, a) + dot(b, b) - 2*dot(a, b))))
			if row[j] != want || math.Abs(float64(want)-rbf(gamma, a, b)) > 1e-7 {
				t.Errorf("request %d: K(%d, %d) = %v, want %v", k, r.i, j, row[j], want)
			}
		}
	}
	if len(c.rows) != 2 {
		t.Errorf("%d rows allocated, want 2", len(c.rows))
	}
}
