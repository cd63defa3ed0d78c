package qmul

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
)

// FuzzParamsJSON reads method parameters as cell.json and metrics.json
// carry them (a results directory may be damaged or hostile): no input
// panics, memory stays bounded by the input, errors are one line in a
// user's words, and what is accepted holds values of its rows' kinds that pass
// their checks and survives a round trip.
func FuzzParamsJSON(f *testing.F) {
	for _, m := range UnlearningMethods() {
		raw, _ := json.Marshal(Defaults(m).Resolve(m, 10).Params)
		f.Add(raw)
	}
	for _, s := range []string{`{}`, `null`, `{"alpha":1}`, `{"lr_milestones":[3,1]}`, `{"lr_milestones":"3,5"}`,
		`{"max_steps":2.5}`, `{"max_steps":1e300}`, `{"kd_weight":"x"}`, `{"augment":1}`, `{"agr":["epoch"]}`, `[1,2]`,
		`{"agr":"` + strings.Repeat("x", 400) + `"}`, `{"lr_milestones":[` + strings.Repeat("1,", 300) + `"x"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ps, ok := fuzzcheck.Read(t, len(raw), allocBase, allocPerByte, func() (ps Params, err error) {
			return ps, json.Unmarshal(raw, &ps)
		})
		if !ok {
			return
		}
		for name, v := range ps {
			p, ok := LookupParam(name)
			if !ok {
				t.Fatalf("accepted unknown parameter %q", name)
			}
			if _, err := p.Coerce(v); err != nil {
				t.Fatalf("accepted %s = %v: %v", name, v, err)
			}
		}
		again, err := json.Marshal(ps)
		if err != nil {
			t.Fatal(err)
		}
		var back Params
		if err := json.Unmarshal(again, &back); err != nil || !reflect.DeepEqual(back, ps) && len(ps) > 0 {
			t.Fatalf("%s came back as %v (%v)", again, back, err)
		}
	})
}
