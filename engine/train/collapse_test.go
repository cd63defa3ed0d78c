package train

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestCollapseGuard feeds the guard sequences of epoch losses for 10
// classes (ln 10 ≈ 2.3026) and checks the epoch it stops at.
func TestCollapseGuard(t *testing.T) {
	ln10 := math.Log(10)
	tests := []struct {
		name   string
		losses []float64
		stop   int // 1-based epoch reported, 0 for none
	}{
		{"learning", []float64{2.2, 1.1, 0.6, 0.4}, 0},
		{"collapse", []float64{1.9, 0.9, 0.7, 2.31, 2.30}, 4},
		{"never below", []float64{2.5, 2.4, 2.35, 2.31}, 0}, // still looking for a start
		{"starts above then collapses", []float64{2.6, 2.0, 2.4}, 3},
		{"exactly at chance", []float64{1.0, ln10, ln10}, 0},
		{"just above chance", []float64{1.0, math.Nextafter(ln10, 3)}, 2},
		{"spike", []float64{0.5, 0.5, 9.0, 0.5}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewCollapseGuard(10)
			stop := 0
			var err error
			for i, l := range tt.losses {
				if err = g.Epoch(i+1, 0.05, l); err != nil {
					stop = i + 1
					break
				}
			}
			if stop != tt.stop {
				t.Fatalf("stopped at epoch %d, want %d (%v)", stop, tt.stop, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrCollapsed) {
				t.Errorf("error %v does not wrap ErrCollapsed", err)
			}
			for _, want := range []string{"epoch " + string(rune('0'+stop)) + " ", "lr 0.05", "--allow-collapse"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
