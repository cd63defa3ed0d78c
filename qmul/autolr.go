package qmul

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul/lrsearch"
)

// LRSearch asks a Job to search its learning rate (`unlearn --lr auto`):
// the candidates run one after another in the process, on the job's
// backend, each from a fresh copy of θ_o, and the best by Select is kept.
type LRSearch struct {
	Spec   lrsearch.Spec
	Select string
	// Log, when set, gets a line per candidate.
	Log io.Writer
}

// Check reports an unusable search for a job (reference: whether the job
// has Retrain's metrics, which the gap criterion needs).
func (s *LRSearch) Check(method string, reference bool) error {
	if FromScratch(method) || !TakesLR(method) {
		return fmt.Errorf("--lr auto: %s takes no learning rate to search", method)
	}
	if err := CheckCriterion(s.Select); err != nil {
		return err
	}
	if s.Select == SelectGap && !reference {
		return fmt.Errorf("--select gap needs --reference (Retrain's metrics.json); without Retrain use --select proxy")
	}
	if err := s.Spec.Validate(); err != nil {
		return fmt.Errorf("--lr auto: %w", err)
	}
	return nil
}

// SearchRecord is a search's part of metrics.json.
type SearchRecord struct {
	Select string        `json:"select"`
	Spec   lrsearch.Spec `json:"spec"`
	Rounds [][]float64   `json:"rounds"`
	// Candidates are every rate tried, in the order they ran.
	Candidates []Candidate `json:"candidates"`
	Stop       string      `json:"stop"`
	Chosen     float64     `json:"chosen"`
	// Plateau: the chosen rate leaves the model where θ_o was.
	Plateau bool `json:"plateau,omitempty"`
	// Original is θ_o's evaluation, which the proxy and the plateau read.
	Original Metrics `json:"original"`
	// RTE is the unlearning time of all the candidates together (the
	// result's rte_s is the chosen one's alone).
	RTE float64 `json:"rte_s"`
}

// Candidate is one rate a search tried.
type Candidate struct {
	LR    float64 `json:"lr"`
	Round int     `json:"round"`
	// Failed is the collapse or divergence that ended the run; such a
	// candidate has no metrics and is never chosen.
	Failed string `json:"failed,omitempty"`
	Metrics
	Proxy   float64 `json:"proxy_gap"`
	Plateau bool    `json:"plateau,omitempty"`
}

// candidateRun is a candidate's model while the search may still choose it.
type candidateRun struct {
	lr    float64
	score float64
	model *models.Model
	res   Metrics
}

// search runs the job's method at every rate the search asks for and
// leaves the best model and its hyper-parameters in the run.
func (j *Job) search(r *run) error {
	b := j.Backend
	start := time.Now()
	orig, err := Evaluate(b, r.model, r.sets, max(256, j.Hyper.Batch))
	if err != nil {
		return fmt.Errorf("evaluating the original: %w", err)
	}
	if r.ref != nil {
		orig.Gap(*r.ref)
	}
	r.original = orig
	rec := &SearchRecord{Select: j.Search.Select, Spec: j.Search.Spec, Original: orig.Metrics}
	var best *candidateRun
	var runErr error
	state := j.Search.Spec.Replay(func(lr float64) (lrsearch.Outcome, bool) {
		if runErr != nil {
			return lrsearch.Outcome{}, false
		}
		c, o, err := j.candidate(r, lr)
		if err != nil {
			runErr = err
			return o, false
		}
		rec.Candidates = append(rec.Candidates, c.Candidate)
		rec.RTE += c.RTE
		if c.run != nil {
			if best == nil || c.run.score < best.score || c.run.score == best.score && lr < best.lr {
				if best != nil {
					freeModel(b, best.model)
				}
				best = c.run
			} else {
				freeModel(b, c.run.model)
			}
		}
		return o, true
	})
	if runErr != nil {
		return runErr
	}
	for i := range rec.Candidates {
		rec.Candidates[i].Round = roundOf(state.Rounds, rec.Candidates[i].LR)
	}
	rec.Rounds, rec.Stop = state.Rounds, state.Stop
	r.phases["search"] = time.Since(start).Seconds()
	if best == nil {
		return fmt.Errorf("%s: %w at every learning rate the search tried (%s); pass --allow-collapse to keep such runs",
			j.Method, train.ErrCollapsed, joinLRs(state.Rounds))
	}
	rec.Chosen, rec.Plateau = best.lr, state.OnPlateau()
	h := j.Hyper.Resolve(j.Method, r.model.Config.Classes)
	h.LR = best.lr
	r.res.Hyper, r.res.Search, r.model = &h, rec, best.model
	r.res.RTE = best.res.RTE
	return nil
}

// candidateResult is one candidate's record, its outcome for the search
// and, unless it failed, its model.
type candidateResult struct {
	Candidate
	run *candidateRun
}

// candidate unlearns a fresh copy of θ_o at lr and evaluates it. A
// collapse or divergence is a failed candidate, not an error.
func (j *Job) candidate(r *run, lr float64) (candidateResult, lrsearch.Outcome, error) {
	b := j.Backend
	m, err := r.orig.Rebuild(b)
	if err != nil {
		return candidateResult{}, lrsearch.Outcome{}, err
	}
	h := j.Hyper.Resolve(j.Method, m.Config.Classes)
	h.LR = lr
	var copies []*models.Model // θ_o copies the method asks for (SCRUB's teacher, BS's attack)
	s := &Study{B: b, Model: m, Sets: r.sets, Classes: m.Config.Classes, Aug: r.origin.Recipe.Aug,
		Progress: j.Progress, Phases: map[string]float64{},
		Original: func() (*models.Model, error) {
			o, err := r.orig.Rebuild(b)
			if err == nil {
				copies = append(copies, o)
			}
			return o, err
		}}
	c := candidateResult{Candidate: Candidate{LR: lr}}
	t := time.Now()
	err = Unlearn(s, j.Method, h)
	c.RTE = time.Since(t).Seconds()
	for _, o := range copies {
		freeModel(b, o)
	}
	var ev *Evaluation
	if err == nil {
		ev, err = Evaluate(b, m, r.sets, max(256, h.Batch))
	}
	if err == nil && !h.AllowCollapse {
		err = TotalLoss(j.Method, ev.RA, r.original.RA, m.Config.Classes)
	}
	if errors.Is(err, train.ErrCollapsed) || errors.Is(err, train.ErrDiverged) {
		freeModel(b, m)
		c.Failed = err.Error()
		j.logf("%s lr %g: failed: %v", j.Method, lr, err)
		return c, lrsearch.Outcome{Failed: true}, nil
	}
	if err != nil {
		return c, lrsearch.Outcome{}, fmt.Errorf("%s at lr %g: %w", j.Method, lr, err)
	}
	rte := c.RTE
	c.Metrics = ev.Metrics
	c.RTE = rte
	if r.ref != nil {
		c.Gap(*r.ref)
	}
	c.Proxy = ProxyGap(c.Metrics, r.original.Metrics, r.setup.Forget.ClassWise())
	c.Plateau = OnPlateau(c.Metrics, r.original.Metrics)
	score := c.Proxy
	if j.Search.Select == SelectGap {
		score = *c.AvgGap
	}
	j.logf("%s lr %g: FA %.2f RA %.2f TA %.2f MIA %.2f, %s %.2f%s", j.Method, lr, c.FA, c.RA, c.TA, c.MIA, j.Search.Select, score, plateauNote(c.Plateau))
	c.run = &candidateRun{lr: lr, score: score, model: m, res: c.Metrics}
	return c, lrsearch.Outcome{Score: score, Plateau: c.Plateau}, nil
}

func plateauNote(p bool) string {
	if p {
		return " (does nothing)"
	}
	return ""
}

func (j *Job) logf(format string, args ...any) {
	if j.Search != nil && j.Search.Log != nil {
		fmt.Fprintf(j.Search.Log, "search: "+format+"\n", args...)
	}
}

// roundOf is the 1-based round that asked for a rate.
func roundOf(rounds [][]float64, lr float64) int {
	for i, r := range rounds {
		for _, x := range r {
			if x == lr {
				return i + 1
			}
		}
	}
	return 0
}

func joinLRs(rounds [][]float64) string {
	var s string
	for _, r := range rounds {
		for _, lr := range r {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprint(lr)
		}
	}
	return s
}
