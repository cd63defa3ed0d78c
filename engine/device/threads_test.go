package device

import (
	"runtime"
	"testing"
)

func TestCheckThreads(t *testing.T) {
	for _, tc := range []struct {
		threads int
		ok      bool
	}{
		{0, true}, {1, true}, {runtime.NumCPU(), true}, {maxThreadsPerCPU * runtime.NumCPU(), true},
		{-1, false}, {maxThreadsPerCPU*runtime.NumCPU() + 1, false}, {100000, false},
	} {
		if err := CheckThreads(tc.threads); (err == nil) != tc.ok {
			t.Errorf("--threads %d: error %v, want ok=%v", tc.threads, err, tc.ok)
		}
	}
	opts := DefaultOptions()
	opts.Threads = 100000
	if _, err := Open("cpu", opts); err == nil {
		t.Error("Open accepted --threads 100000")
	}
}
