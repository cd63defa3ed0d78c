package sweep

import (
	"fmt"
	"sort"

	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// Original describes one original model: what a train job needs.
type Original struct {
	Data   train.DataSpec `json:"data"`
	Model  models.Config  `json:"model"`
	Quant  qat.Config     `json:"quant"`
	Recipe train.Recipe   `json:"recipe"`
	// AllowCollapse turns off the collapse guard when training the
	// original and Retrain.
	AllowCollapse bool `json:"allow_collapse,omitempty"`
}

// Key identifies the original.
func (o Original) Key() string { return key(o) }

// Cell is one unlearning run of the grid: a method with its
// hyper-parameters on an original model and a forget set. Retrain cells
// have the method qmul.Reference() and no hyper-parameters.
type Cell struct {
	Original Original   `json:"original"`
	Forget   string     `json:"forget"`
	Method   string     `json:"method"`
	Name     string     `json:"name"`
	Hyper    qmul.Hyper `json:"hyper"`
	Seed     uint64     `json:"seed"`
}

// Key identifies the cell: a hash of its whole configuration.
func (c Cell) Key() string { return key(c) }

// RetrainKey identifies the Retrain cell the cell is compared with.
func (c Cell) RetrainKey() string { return c.retrain().Key() }

func (c Cell) retrain() Cell {
	return Cell{Original: c.Original, Forget: c.Forget, Method: qmul.Reference(), Name: qmul.Reference(), Seed: c.Seed}
}

// originalMethod names the cells that evaluate the original model itself
// (no unlearning) on a forget set: the tables' "do nothing" row, and what
// the searches' plateau and proxy criterion compare with.
const originalMethod = "original"

// originalCell is the evaluation of c's original model on its forget set.
func originalCell(c Cell) Cell {
	return Cell{Original: c.Original, Forget: c.Forget, Method: originalMethod, Name: originalMethod, Seed: c.Seed}
}

// Group is what the report aggregates over seeds: everything but the seed.
type Group struct {
	Dataset string `json:"dataset"`
	Model   string `json:"model"`
	Quant   string `json:"quant"`
	Forget  string `json:"forget"`
}

// Group returns the cell's table group.
func (c Cell) Group() Group {
	return Group{Dataset: c.Original.Data.Dataset, Model: c.Original.Model.Arch, Quant: c.Original.Quant.String(), Forget: c.Forget}
}

// String describes the cell in one line.
func (c Cell) String() string {
	s := fmt.Sprintf("%s %s %s %s %s seed %d", c.Name, c.Forget, c.Original.Data.Dataset, c.Original.Model.Arch, c.Original.Quant, c.Seed)
	if !qmul.FromScratch(c.Method) && c.Method != originalMethod {
		s += fmt.Sprintf(" lr %g", c.Hyper.LR)
	}
	return s
}

// classes is the label count of the built-in data sets (folders are
// treated as large label spaces for the default pass schedule).
func classes(dataset string) int {
	switch dataset {
	case "cifar100":
		return 100
	case "folder":
		return 1000
	}
	return 10
}

// Expand lists every cell of the fixed grid — for each original and forget
// set the Retrain cell and the original's evaluation first — in a fixed
// order. The cells of learning-rate searches depend on results: see Plan.
func (c *Config) Expand() []Cell {
	var cells []Cell
	for _, ds := range c.Datasets {
		for _, arch := range c.Models {
			for _, bits := range c.bitsList() {
				for _, seed := range c.Seeds {
					o := Original{
						Data:          train.DataSpec{Dataset: ds, Dir: c.DataDir, ValFrac: *c.ValFrac, SplitSeed: seed, Subset: c.Subset, TestSubset: c.TestSubset},
						Model:         models.Config{Arch: arch},
						Quant:         c.quantConfig(bits),
						Recipe:        c.recipe(ds, seed),
						AllowCollapse: c.Original.AllowCollapse,
					}
					if arch == "mobilenetv2" {
						o.Model.Width = c.Width
					}
					for _, f := range c.Forget {
						base := Cell{Original: o, Forget: f, Seed: seed}
						cells = append(cells, base.retrain(), originalCell(base))
						for _, e := range c.Methods {
							for _, lr := range c.lrs(e) {
								cell := base
								cell.Method, cell.Name = e.Method, e.Name
								cell.Hyper = c.hyper(e, lr, seed, classes(ds))
								cells = append(cells, cell)
							}
						}
					}
				}
			}
		}
	}
	return cells
}

// Shard returns the unlearning cells of shard i of n, dealt round-robin in
// key order so that each lands in exactly one shard. Retrain cells and
// original models are not dealt: a shard makes the ones its cells need,
// each exactly once across shards thanks to a lock.
func Shard(cells []Cell, i, n int) []Cell {
	var work []Cell
	for _, c := range cells {
		if !qmul.FromScratch(c.Method) {
			work = append(work, c)
		}
	}
	sort.Slice(work, func(a, b int) bool { return work[a].Key() < work[b].Key() })
	var mine []Cell
	for k, c := range work {
		if k%n == i {
			mine = append(mine, c)
		}
	}
	return mine
}
