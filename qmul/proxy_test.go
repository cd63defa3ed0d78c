package qmul

import (
	"math"
	"testing"
)

// TestProxyTarget checks the Retrain estimate of each kind of forget set
// and the criterion built on it, on the study's numbers for Fashion-MNIST
// (original: RA 95, TA 85, and 18% of the test set called non-members).
func TestProxyTarget(t *testing.T) {
	original := Metrics{FA: 95, RA: 95, TA: 85, MIA: 6, MIATest: 18}
	cases := []struct {
		name      string
		classWise bool
		want      Metrics
	}{
		{"random", false, Metrics{FA: 85, RA: 95, TA: 85, MIA: 18}},
		{"class-wise", true, Metrics{FA: 0, RA: 95, TA: 85, MIA: 100}},
	}
	for _, tc := range cases {
		got := ProxyTarget(original, tc.classWise)
		if got.FA != tc.want.FA || got.RA != tc.want.RA || got.TA != tc.want.TA || got.MIA != tc.want.MIA {
			t.Errorf("%s: target %+v, want %+v", tc.name, got, tc.want)
		}
		if g := ProxyGap(tc.want, original, tc.classWise); g != 0 {
			t.Errorf("%s: a model at the target has proxy gap %g", tc.name, g)
		}
		// Doing nothing costs the original's distance to the target.
		if g, want := ProxyGap(original, original, tc.classWise), Distance(original, tc.want); math.Abs(g-want) > 1e-12 || g == 0 {
			t.Errorf("%s: the original's proxy gap %g, want %g > 0", tc.name, g, want)
		}
	}
	// Random forgetting: forgetting just enough (FA at the test accuracy)
	// beats doing nothing and beats destroying the forget set.
	nothing := ProxyGap(original, original, false)
	enough := ProxyGap(Metrics{FA: 86, RA: 94, TA: 85, MIA: 17}, original, false)
	tooMuch := ProxyGap(Metrics{FA: 40, RA: 80, TA: 75, MIA: 60}, original, false)
	if !(enough < nothing && enough < tooMuch) {
		t.Errorf("proxy gaps: forgetting enough %.2f, nothing %.2f, too much %.2f; want the first smallest", enough, nothing, tooMuch)
	}
}

func TestOnPlateau(t *testing.T) {
	original := Metrics{FA: 95, RA: 95, TA: 85, MIA: 6}
	if !OnPlateau(Metrics{FA: 95.2, RA: 94.9, TA: 85.3, MIA: 6.4}, original) {
		t.Error("a model within a few samples of the original is not on the plateau")
	}
	if OnPlateau(Metrics{FA: 93, RA: 95, TA: 85, MIA: 6}, original) {
		t.Error("a model that forgot 2 points of FA counts as doing nothing")
	}
}
