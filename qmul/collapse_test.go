package qmul

import (
	"errors"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/train"
)

func TestTotalLoss(t *testing.T) {
	cases := []struct {
		name             string
		ra, original     float64
		classes          int
		collapsed, close bool
	}{
		{"at chance", 9.56, 69.33, 10, true, true},
		{"below chance", 4, 95, 10, true, true},
		{"a tenth of the margin kept", 18.5, 95, 10, true, true},
		{"just above a tenth", 19, 95, 10, false, true},
		{"a weak original cannot collapse", 10, 29, 10, false, true},
		{"a good result", 93, 95, 10, false, false},
		{"100 classes at chance", 1.5, 70, 100, true, true},
		{"100 classes, half kept", 35, 70, 100, false, false},
	}
	for _, tc := range cases {
		err := TotalLoss("ft", tc.ra, tc.original, tc.classes)
		if got := err != nil; got != tc.collapsed {
			t.Errorf("%s: collapsed %v (%v), want %v", tc.name, got, err, tc.collapsed)
		}
		if err != nil && !errors.Is(err, train.ErrCollapsed) {
			t.Errorf("%s: %v does not wrap train.ErrCollapsed (sweeps would stop instead of recording the cell)", tc.name, err)
		}
		if tc.collapsed && !nearChance(tc.ra, tc.classes) {
			t.Errorf("%s: collapsed but not near chance: the original would never be measured", tc.name)
		}
		if got := nearChance(tc.ra, tc.classes); !tc.close && got {
			t.Errorf("%s: RA %g counts as near chance: the original would be measured for nothing", tc.name, tc.ra)
		}
	}
}
