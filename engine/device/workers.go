package device

import (
	"fmt"
	"os"
	"strings"
)

// Workers lists the devices a sweep runs its cells on, one worker each:
// for --device auto one per GPU that CUDA will show this process, or the
// CPU when there is none; for any other spec that device alone.
//
// NVML (Discover) lists every GPU of the machine, while CUDA numbers only
// those CUDA_VISIBLE_DEVICES names (Slurm's --gres and container runtimes
// set it), from 0. So the workers are cuda:0 … cuda:(n−1) with n the
// smaller of the two counts.
func Workers(spec string) []string {
	if spec != "" && spec != "auto" {
		return []string{spec}
	}
	gpus, err := GPUs()
	if err != nil {
		return []string{"cpu"}
	}
	visible, set := os.LookupEnv("CUDA_VISIBLE_DEVICES")
	return workers(len(gpus), visible, set)
}

// workers names n GPUs, fewer when CUDA_VISIBLE_DEVICES is set (to
// visible), or the CPU when none remains.
func workers(n int, visible string, set bool) []string {
	if set {
		n = min(n, visibleCount(visible))
	}
	if n == 0 {
		return []string{"cpu"}
	}
	devs := make([]string, n)
	for i := range devs {
		devs[i] = fmt.Sprintf("cuda:%d", i)
	}
	return devs
}

// visibleCount is how many devices a CUDA_VISIBLE_DEVICES value shows:
// its comma-separated entries up to the first invalid one, as CUDA reads
// it (an empty value, "-1" or "NoDevFiles" show none).
func visibleCount(v string) int {
	n := 0
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "-") || e == "NoDevFiles" {
			break
		}
		n++
	}
	return n
}
