// Package study holds the unlearning study of docs/results.md as data: its
// sweep files, and the learning rates its searches chose, at which the
// demo runs the methods.
package study

import (
	"embed"
	"encoding/json"
	"fmt"

	"github.com/qmulgpu/qmulgpu/qmul/sweep"
)

//go:embed *.yaml *.json
var files embed.FS

// DemoRatesFile is the rates file of the demo's setting (Fashion-MNIST,
// random 10%), as the repository names it.
const DemoRatesFile = "docs/study/rates-fmnist-random.json"

// DemoRates returns the learning rates the study chose for the demo's
// setting, by method (the plain variant of each: its name is the
// method's), and where they come from.
func DemoRates() (map[string]float64, string, error) {
	r, err := ReadRates("rates-fmnist-random.json")
	if err != nil {
		return nil, "", err
	}
	out := map[string]float64{}
	for _, x := range r.Rates {
		if x.Name == x.Method {
			out[x.Method] = x.LR
		}
	}
	return out, r.Source, nil
}

// ReadRates reads a rates file of the study (a report's rates.json).
func ReadRates(name string) (sweep.Rates, error) {
	var r sweep.Rates
	raw, err := files.ReadFile(name)
	if err != nil {
		return r, fmt.Errorf("study: %w", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("study: %s: %w", name, err)
	}
	return r, nil
}

// Config parses one of the study's sweep files.
func Config(name string) (*sweep.Config, error) {
	raw, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("study: %w", err)
	}
	c, err := sweep.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("study: %s: %w", name, err)
	}
	return c, nil
}
