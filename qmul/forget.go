// Package qmul unlearns a forget set from a quantized model — Q-MUL
// (similar labels and adaptive gradient reweighting) and the standard
// baselines — and evaluates the result with the SalUn/Unlearn-Sparse
// metrics: forget, retain and test accuracy, MIA-efficacy, the average gap
// to Retrain and the run time.
package qmul

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// ForgetSpec is a parsed --forget value.
type ForgetSpec struct {
	// Kind is "random", "class" or "indices".
	Kind string
	// N is the count of a random set (0 when Frac is used).
	N int
	// Frac is the fraction of a random set given as a percentage.
	Frac float64
	// Class is the forgotten class of a class-wise set.
	Class int
	// File holds the indices of an explicit set.
	File string
	raw  string
}

// String returns the spec as written.
func (s ForgetSpec) String() string { return s.raw }

// ParseForget parses random:N, random:P%, class:K or indices:FILE.
func ParseForget(spec string) (ForgetSpec, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	s := ForgetSpec{Kind: kind, raw: spec}
	q := clip.Quote(spec)
	if !ok || arg == "" {
		return s, fmt.Errorf("--forget %s: want random:N, random:P%%, class:K or indices:FILE", q)
	}
	switch kind {
	case "random":
		if p, isPct := strings.CutSuffix(arg, "%"); isPct {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || math.IsNaN(f) || f <= 0 || f > 100 {
				return s, fmt.Errorf("--forget %s: the percentage must be in (0, 100]", q)
			}
			s.Frac = f / 100
			return s, nil
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return s, fmt.Errorf("--forget %s: the count must be a positive integer", q)
		}
		s.N = n
	case "class":
		k, err := strconv.Atoi(arg)
		if err != nil || k < 0 {
			return s, fmt.Errorf("--forget %s: the class must be a non-negative integer", q)
		}
		s.Class = k
	case "indices":
		s.File = arg
	default:
		return s, fmt.Errorf("--forget %s: unknown kind %s (random, class or indices)", q, clip.Quote(kind))
	}
	return s, nil
}

// ClassWise reports whether the spec forgets a whole class.
func (s ForgetSpec) ClassWise() bool { return s.Kind == "class" }

// Select draws the forget set from the training split (trainIdx, indices
// into the training data with the given labels), deterministically from
// seed. The result is sorted.
func (s ForgetSpec) Select(labels []int32, classes int, trainIdx []int, seed uint64) ([]int, error) {
	switch s.Kind {
	case "random":
		n := s.N
		if s.Frac > 0 {
			n = int(math.Round(s.Frac * float64(len(trainIdx))))
		}
		if n < 1 || n > len(trainIdx) {
			return nil, fmt.Errorf("--forget %s: %d samples asked, the training split has %d", s, n, len(trainIdx))
		}
		r := rand.New(rand.NewPCG(seed, 0x666f72676574))
		perm := r.Perm(len(trainIdx))[:n]
		out := make([]int, n)
		for i, p := range perm {
			out[i] = trainIdx[p]
		}
		sort.Ints(out)
		return out, nil
	case "class":
		if s.Class >= classes {
			return nil, fmt.Errorf("--forget %s: the data set has classes 0 to %d", s, classes-1)
		}
		var out []int
		for _, i := range trainIdx {
			if int(labels[i]) == s.Class {
				out = append(out, i)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("--forget %s: the training split holds no sample of class %d", s, s.Class)
		}
		return out, nil
	case "indices":
		return s.readIndices(trainIdx)
	}
	return nil, fmt.Errorf("--forget %s: unknown kind", s)
}

// readIndices reads an index file (see ParseIndices) and checks each index
// lies in the training split exactly once.
func (s ForgetSpec) readIndices(trainIdx []int) ([]int, error) {
	raw, err := os.ReadFile(s.File)
	if err != nil {
		return nil, fmt.Errorf("--forget %s: %w", s, err)
	}
	idx, err := ParseIndices(raw)
	if err != nil {
		return nil, fmt.Errorf("--forget %s: %w", s, err)
	}
	inSplit := make(map[int]bool, len(trainIdx))
	for _, i := range trainIdx {
		inSplit[i] = true
	}
	seen := make(map[int]bool, len(idx))
	for _, i := range idx {
		switch {
		case seen[i]:
			return nil, fmt.Errorf("--forget %s: index %d appears twice", s, i)
		case !inSplit[i]:
			return nil, fmt.Errorf("--forget %s: index %d is not in the training split (out of range or held out for validation)", s, i)
		}
		seen[i] = true
	}
	sort.Ints(idx)
	return idx, nil
}

// ParseIndices reads a forget set's index file: one index per line (blank
// lines and # comments allowed) or a JSON array of integers. It returns
// the indices in file order; there is at least one.
func ParseIndices(raw []byte) ([]int, error) {
	var idx []int
	text := strings.TrimSpace(string(raw))
	if strings.HasPrefix(text, "[") {
		if err := json.Unmarshal([]byte(text), &idx); err != nil {
			return nil, fmt.Errorf("not a JSON array of integers: %s", jsonerr.Describe(err))
		}
	} else {
		for n, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			v, err := strconv.Atoi(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s is not an index", n+1, clip.Quote(line))
			}
			idx = append(idx, v)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("the file lists no index")
	}
	return idx, nil
}

// Complement returns the training-split indices not in forget (the retain
// set D_r), in training-split order.
func Complement(trainIdx, forget []int) []int {
	drop := make(map[int]bool, len(forget))
	for _, i := range forget {
		drop[i] = true
	}
	out := make([]int, 0, len(trainIdx)-len(forget))
	for _, i := range trainIdx {
		if !drop[i] {
			out = append(out, i)
		}
	}
	return out
}
