package train

import (
	"strings"
	"testing"
)

func TestCheckSubsets(t *testing.T) {
	for _, tc := range []struct {
		subset, testSubset int
		want               string
	}{
		{0, 0, ""}, {10, 10, ""}, {400, 200, ""},
		{5, 0, "--subset 5: fewer samples than the 10 classes"},
		{0, 9, "--test-subset 9: fewer samples than the 10 classes"},
		{-1, 0, "--subset -1: must not be negative"},
	} {
		err := DataSpec{Dataset: "mnist", Subset: tc.subset, TestSubset: tc.testSubset}.checkSubsets(10)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("subsets %d, %d: error %v, want %q", tc.subset, tc.testSubset, err, tc.want)
		}
	}
}
