package device

import (
	"fmt"
	"strings"
	"testing"
)

func TestWorkers(t *testing.T) {
	for _, tc := range []struct {
		gpus    int
		visible string
		set     bool
		want    string
	}{
		{0, "", false, "cpu"},
		{2, "", false, "cuda:0 cuda:1"},
		{4, "2,3", true, "cuda:0 cuda:1"},
		{2, "0,1,2,3", true, "cuda:0 cuda:1"}, // more named than present
		{2, "", true, "cpu"},                  // set but empty: none visible
		{4, "-1", true, "cpu"},
		{4, "NoDevFiles", true, "cpu"},
		{4, "1,-1,2", true, "cuda:0"}, // CUDA stops at the first invalid entry
		{4, "GPU-8a2f,GPU-77c1", true, "cuda:0 cuda:1"},
		{4, " 0 , 1 ", true, "cuda:0 cuda:1"},
	} {
		got := strings.Join(workers(tc.gpus, tc.visible, tc.set), " ")
		if got != tc.want {
			t.Errorf("workers(%d GPUs, CUDA_VISIBLE_DEVICES=%q set %v) = %s, want %s", tc.gpus, tc.visible, tc.set, got, tc.want)
		}
	}
}

// TestWorkersNamedDevice: a named device is the one worker, and without
// the cuda build auto is the CPU.
func TestWorkersNamedDevice(t *testing.T) {
	if got := Workers("cuda:1"); len(got) != 1 || got[0] != "cuda:1" {
		t.Errorf("Workers(cuda:1) = %v", got)
	}
	if gpu == nil {
		if got := Workers("auto"); len(got) != 1 || got[0] != "cpu" {
			t.Errorf("Workers(auto) without CUDA = %v", got)
		}
	}
}

// FuzzWorkers: whatever CUDA_VISIBLE_DEVICES holds, the workers are the
// CPU or cuda:0 … cuda:(k−1) for some k no larger than the GPUs present.
func FuzzWorkers(f *testing.F) {
	for _, s := range []string{"", "0", "0,1", "1,-1,2", "NoDevFiles", "GPU-8a2f,MIG-1", " 3 ,", ",,", "-1"} {
		f.Add(s, uint8(4))
	}
	f.Fuzz(func(t *testing.T, visible string, gpus uint8) {
		got := workers(int(gpus), visible, true)
		if len(got) == 1 && got[0] == "cpu" {
			return
		}
		if len(got) > int(gpus) {
			t.Fatalf("workers(%d, %q) = %v: more than the GPUs present", gpus, visible, got)
		}
		for i, d := range got {
			if d != fmt.Sprintf("cuda:%d", i) {
				t.Fatalf("workers(%d, %q) = %v", gpus, visible, got)
			}
		}
	})
}
