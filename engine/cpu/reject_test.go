package cpu_test

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/optest"
)

// TestRejections checks that every op refuses operands that break its
// preconditions with the engine's error (the CUDA backend's test compares
// it with this backend's).
func TestRejections(t *testing.T) {
	b := cpu.New(1)
	for _, r := range optest.Rejections() {
		t.Run(r.Name, func(t *testing.T) {
			if _, err := optest.Rejected(b, r); err != nil {
				t.Error(err)
			}
		})
	}
}
