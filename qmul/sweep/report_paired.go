package sweep

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// pairedAlpha is the significance level below which a paired comparison
// calls one method's Avg. Gap smaller than another's.
const pairedAlpha = 0.05

// Paired compares one row's Avg. Gap with the table's best row seed by
// seed: the same seed means the same original model, split and forget
// set, so the paired difference removes what the seeds share.
type Paired struct {
	Name string
	// Seeds is how many seeds both rows ran at their chosen rates.
	Seeds int
	// Diff and Std are the mean and standard deviation over those seeds
	// of this row's Avg. Gap minus the best row's.
	Diff, Std float64
	// P is the two-sided p-value of a paired t-test (Student's t with
	// Seeds−1 degrees of freedom) that the mean difference is zero.
	P float64
}

// pairedTest returns the two-sided p-value of a paired t-test on the
// differences d, NaN for fewer than two. Identical differences give 0
// when they are not zero and 1 when they are.
func pairedTest(d []float64) (mean, std, p float64) {
	if len(d) < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	mean, std = stat.MeanStdDev(d, nil)
	if std == 0 {
		if mean == 0 {
			return mean, std, 1
		}
		return mean, std, 0
	}
	t := mean / (std / math.Sqrt(float64(len(d))))
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(d) - 1)}
	return mean, std, 2 * dist.Survival(math.Abs(t))
}

// pairedComparisons compares every unlearning row with the one of
// smallest mean Avg. Gap over the seeds both ran; it returns the best
// row's name and one comparison per other row with at least two common
// seeds.
func pairedComparisons(t Table) (string, []Paired) {
	best := -1
	for i, r := range t.Rows {
		if unlearns(r) && (best < 0 || r.Gap.Mean < t.Rows[best].Gap.Mean) {
			best = i
		}
	}
	if best < 0 {
		return "", nil
	}
	var out []Paired
	for i, r := range t.Rows {
		if i == best || !unlearns(r) {
			continue
		}
		var d []float64
		for seed, g := range r.gapBySeed {
			if b, ok := t.Rows[best].gapBySeed[seed]; ok {
				d = append(d, g-b)
			}
		}
		if len(d) < 2 {
			continue
		}
		slices.Sort(d) // map order must not change the sums' rounding
		mean, std, p := pairedTest(d)
		out = append(out, Paired{Name: r.Name, Seeds: len(d), Diff: mean, Std: std, P: p})
	}
	return t.Rows[best].Name, out
}

// writePaired writes the paired comparisons of a table: which methods the
// best one beats across seeds, and which it cannot be told apart from.
func writePaired(b *bytes.Buffer, t Table) {
	best, ps := pairedComparisons(t)
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(b, "\nPaired across seeds against %s, the smallest mean Avg. Gap (each method's Avg. Gap minus %s's on the same seed, mean ± standard deviation; two-sided paired t-test, p < %g counts):\n\n", best, best, pairedAlpha)
	b.WriteString("| method | seeds | Avg. Gap − best | p | verdict |\n|---|---:|---:|---:|---|\n")
	var beaten, tied []string
	for _, p := range ps {
		verdict := "not distinguishable"
		if p.P < pairedAlpha && p.Diff > 0 {
			verdict = best + " better"
			beaten = append(beaten, p.Name)
		} else {
			tied = append(tied, p.Name)
		}
		fmt.Fprintf(b, "| %s | %d | %+.2f ± %.2f | %.3f | %s |\n", p.Name, p.Seeds, p.Diff, p.Std, p.P, verdict)
	}
	fmt.Fprintf(b, "\n%s beats %s; it cannot be told apart from %s.\n", best, listOrNone(beaten), listOrNone(tied))
}

// listOrNone joins names with commas, or says "none".
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
