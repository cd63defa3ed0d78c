package sweep

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
)

// FuzzParseConfig reads any bytes as a sweep file: no panic, no runaway on
// aliases and merge keys, memory bounded by the input, one-line errors
// (several problems of one document joined), and a configuration that,
// written again as YAML, parses to the same.
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"testdata/tiny.yaml", "testdata/slurm.yaml", "../../docs/study/fmnist-class.yaml", "../../docs/study/search-mnist-random.yaml"} {
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
		var c *Config
		var err error
		fuzzcheck.Alloc(t, len(raw), 4<<20, 4096, func() { c, err = Parse(raw) })
		if err != nil {
			fuzzcheck.Message(t, err)
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
// "not given" (nulls, empty learning-rate lists), which Parse reads
// differently from absent ones.
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
				if v.Tag == "!!null" || k.Value == "lr" && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
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
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return out
}
