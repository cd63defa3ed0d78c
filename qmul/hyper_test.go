package qmul

import (
	"math"
	"strings"
	"testing"
)

// TestHyperValidateRefuses: hyper-parameters that cannot run (or cannot
// be recorded) are refused before anything is loaded.
func TestHyperValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Hyper)
		want string
	}{
		{"momentum 1", func(h *Hyper) { h.Momentum = 1 }, "--momentum 1 must be below 1"},
		{"NaN sparsity", func(h *Hyper) { h.Sparsity = math.NaN() }, "--sparsity NaN"},
		{"NaN lr", func(h *Hyper) { h.LR = math.NaN() }, "--lr NaN"},
	} {
		h := Defaults("ft")
		tc.edit(&h)
		if err := h.Validate("ft"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := Defaults("ft").Validate("ft"); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestJobRefusesHyperBeforeLoading: bad hyper-parameters are refused
// before the checkpoint or the data are read.
func TestJobRefusesHyperBeforeLoading(t *testing.T) {
	h := Defaults("ft")
	h.Momentum = 1
	_, err := (&Job{Checkpoint: "/nonexistent/model.safetensors", Method: "ft", Forget: "random:5", Hyper: h, Out: t.TempDir()}).Run()
	if err == nil || !strings.Contains(err.Error(), "--momentum 1") {
		t.Errorf("error %v, want the momentum refused first", err)
	}
}
