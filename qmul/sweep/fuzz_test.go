package sweep

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// FuzzParseConfig reads any bytes as a sweep file: no panic, no runaway on
// aliases and merge keys, memory bounded by the input, one-line errors
// (of several problems, the first and how many follow), and a
// configuration that, written again as YAML, parses to the same.
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"testdata/tiny.yaml", "testdata/slurm.yaml", "../../docs/study/auto-fmnist-class.yaml", "../../docs/study/auto-mnist-random.yaml"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("datasets: [mnist]\nmodels: [smallcnn]\nforget: [\"random:10\"]\nbase: &b {method: ft, lr: 0.1}\nmethods:\n  - <<: *b\n    name: a\n  - {<<: [*b, *b], name: c}\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n"))
	f.Add([]byte("datasets: !!binary aGk=\nval_frac: .nan\nseeds: [-1]\n"))
	f.Add(mergeBomb(12))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, ok := fuzzcheck.Read(t, len(raw), 4<<20, 4096, func() (*Config, error) { return Parse(raw) })
		if !ok {
			return
		}
		out := marshalGiven(t, c)
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("written again: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("written again, the configuration differs:\n%s", strings.TrimSpace(string(out)))
		}
	})
}

// marshalGiven writes a configuration as YAML without the keys that mean
// "not given" (nulls), which Parse reads differently from absent ones,
// with the method parameters, which the encoder leaves out, and with the
// learning rates as a file gives them (setLR).
func marshalGiven(t *testing.T, c *Config) []byte {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var prune func(n *yaml.Node)
	prune = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			kept := n.Content[:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Tag == "!!null" {
					continue
				}
				kept = append(kept, k, v)
			}
			n.Content = kept
		}
		for _, child := range n.Content {
			prune(child)
		}
	}
	prune(&doc)
	addParams(t, &doc, c)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return out
}

// addParams adds the method parameters of the unlearn settings and of each
// method entry to their mappings in doc.
func addParams(t *testing.T, doc *yaml.Node, c *Config) {
	add := func(m *yaml.Node, ps qmul.Params) {
		for _, name := range slices.Sorted(maps.Keys(ps)) {
			var v yaml.Node
			if err := v.Encode(ps[name]); err != nil {
				t.Fatalf("marshal %s: %v", name, err)
			}
			p, _ := qmul.LookupParam(name)
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p.Key()}, &v)
		}
	}
	top := doc
	if top.Kind == yaml.DocumentNode {
		top = top.Content[0]
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch k, v := top.Content[i].Value, top.Content[i+1]; k {
		case "unlearn":
			add(v, c.Unlearn.Params)
			setLR(t, v, c.Unlearn.LR)
		case "methods":
			for j, item := range v.Content {
				add(item, c.Methods[j].Params)
				setLR(t, item, c.Methods[j].LR)
			}
		}
	}
}

// setLR writes a method entry's learning rates as the file gives them: a
// search's mapping when auto, else the list of rates (left out when empty).
func setLR(t *testing.T, m *yaml.Node, lr LRList) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "lr" || lr.Auto {
			continue
		}
		if len(lr.Rates) == 0 {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
		var v yaml.Node
		if err := v.Encode(lr.Rates); err != nil {
			t.Fatalf("marshal lr: %v", err)
		}
		m.Content[i+1] = &v
		return
	}
}

// FuzzParseSearch feeds search records (searches/*.json, which the report
// reads from a results directory anyone may have written to) to the parser:
// no panic, memory bounded by the input, one-line errors in a user's words,
// a record that, written as JSON and read back, writes the same, and one that
// renders within its size.
func FuzzParseSearch(f *testing.F) {
	f.Add([]byte(`{"name":"x","seeds":[1],"rounds":[[]],"trials":[]}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, ok := fuzzcheck.Read(t, len(raw), 1<<20, 256, func() (*Search, error) { return parseSearch(raw) })
		if !ok {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := parseSearch(out)
		if err != nil {
			t.Fatalf("written again: %v\n%s", err, out)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out2, out) {
			t.Fatalf("written again, the record differs:\n%s\n%s", out, out2)
		}
		var b bytes.Buffer
		writeSearchRounds(&b, Table{Rows: []Row{{Name: s.Name, Method: s.Method, Search: s}}})
		if b.Len() > 4096+200*len(raw) {
			t.Errorf("a %d-byte record renders as %d bytes", len(raw), b.Len())
		}
	})
}
