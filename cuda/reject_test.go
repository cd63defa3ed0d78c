//go:build cuda

package cuda

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/optest"
)

// TestRejectionsMatchCPU checks that every op refuses the operands that
// break its preconditions with the error the CPU backend gives: on the
// fake executor (the checks run before anything is launched) and on the
// GPU when there is one.
func TestRejectionsMatchCPU(t *testing.T) {
	ref := cpu.New(1)
	fake, _ := newFakeBackend(t)
	backends := []engine.Backend{fake}
	if b, err := theGPU(); err == nil {
		backends = append(backends, b)
	} else {
		t.Logf("on the fake executor only: %v", err)
	}
	for _, r := range optest.Rejections() {
		t.Run(r.Name, func(t *testing.T) {
			want, err := optest.Rejected(ref, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range backends {
				got, err := optest.Rejected(b, r)
				if err != nil {
					t.Error(err)
				} else if got != want {
					t.Errorf("%s: %q, the CPU backend %q", b.Describe(), got, want)
				}
			}
		})
	}
}
