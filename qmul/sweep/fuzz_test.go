package sweep

import (
	"bytes"
	"testing"
)

// FuzzParseSearch feeds search records (searches/*.json, which the report
// reads from a results directory anyone may have written to) to the parser
// and renders what it accepts: no input may panic, and an accepted record
// renders within its size.
func FuzzParseSearch(f *testing.F) {
	f.Add([]byte(`{"key":"k","dataset":"mnist","model":"smallcnn","quant":"lsq W4A4","forget":"random:10%","name":"ft","method":"ft","select":"gap",` +
		`"spec":{"lo":0.01,"hi":0.04,"factor":2,"budget":8},"seeds":[1],"final_seeds":[2],"rounds":[[0.01,0.02,0.04],[0.08]],` +
		`"trials":[{"lr":0.01,"round":1,"score":3.3},{"lr":0.02,"round":1,"score":2.3},{"lr":0.04,"round":1,"score":1.3,"plateau":true},{"lr":0.08,"round":2,"score":0,"failed":true}],` +
		`"done":true,"stop":"refined","lr":0.04,"rejected":[0.02],"complete":true}`))
	f.Add([]byte(`{"name":"x","seeds":[1],"rounds":[[]],"trials":[]}`))
	f.Add([]byte(`{"name":"x","seeds":[1],"rounds":[[1e308,-1,0]],"trials":[{"lr":1e308,"score":1e308}]}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := parseSearch(raw)
		if err != nil {
			return
		}
		var b bytes.Buffer
		writeSearchRounds(&b, Table{Rows: []Row{{Name: s.Name, Method: s.Method, Search: s}}})
		if b.Len() > 4096+200*len(raw) {
			t.Errorf("a %d-byte record renders as %d bytes", len(raw), b.Len())
		}
	})
}
