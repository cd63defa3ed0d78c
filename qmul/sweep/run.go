package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// Layout of a results directory.
const (
	originalsDir = "originals" // one train run per original model
	cellsDir     = "cells"     // one unlearn (or retrain) run per cell
	locksDir     = "locks"
	cellFile     = "cell.json"
	// collapsedFile takes metrics.json's place in a cell whose unlearning
	// collapsed (train.ErrCollapsed): the cell has ended, with no metrics.
	collapsedFile = "collapsed.json"
)

// collapse is the content of collapsedFile.
type collapse struct {
	// Error is the collapse guard's message: the epoch, the learning
	// rate and the loss.
	Error string `json:"error"`
}

// Runner runs (a shard of) a sweep into a results directory.
type Runner struct {
	Config *Config
	Out    string
	// Shard and Shards select the slice of cells this process runs.
	Shard, Shards int
	// Devices lists one backend per worker ("cpu", "cuda:0", ...); Open
	// makes it.
	Devices []string
	Open    func(device string) (engine.Backend, error)
	Threads int
	// Log receives one line per cell; Progress makes each run's progress
	// reporter (nil: none).
	Log      io.Writer
	Progress func() train.Progress
	// Poll is how often a process waiting for another one's model checks
	// again.
	Poll time.Duration
	// Command is recorded in every result.
	Command string

	// lease is how long a lock must be seen unchanged before it counts as
	// abandoned (0: defaultLease).
	lease time.Duration

	mu    sync.Mutex
	held  map[*lock]bool
	locks *locker
}

// take is tryLock that remembers the lock for Release.
func (r *Runner) take(key string) (*lock, bool, error) {
	r.mu.Lock()
	if r.locks == nil {
		lease := r.lease
		if lease == 0 {
			lease = defaultLease
		}
		r.locks = newLocker(monotonic(), lease, lease/beatsPerLease)
	}
	k := r.locks
	r.mu.Unlock()
	l, ok, err := k.tryLock(r.lockPath(key))
	if ok {
		r.mu.Lock()
		if r.held == nil {
			r.held = map[*lock]bool{}
		}
		r.held[l] = true
		r.mu.Unlock()
	}
	return l, ok, err
}

// release unlocks a lock from take and warns if it was lost meanwhile
// (the process looked dead to another one, which may have redone the
// work; results are written atomically, so the directory stays whole).
func (r *Runner) release(l *lock, what string) {
	if l.lost.Load() {
		r.logf("sweep: warning: lost the lock of %s while working on it (was this process suspended?)", what)
	}
	r.mu.Lock()
	delete(r.held, l)
	r.mu.Unlock()
	l.unlock()
}

// Release frees every lock this process holds; call it when stopping on a
// signal, so that other processes need not wait for the locks to go stale.
func (r *Runner) Release() {
	r.mu.Lock()
	held := r.held
	r.held = nil
	r.mu.Unlock()
	for l := range held {
		l.unlock()
	}
}

// Summary counts what a run did.
type Summary struct {
	Cells, Ran, Skipped int
}

// ParseShard reads "I/N" (0-based I).
func ParseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want I/N with 0 ≤ I < N", s)
	}
	return i, n, nil
}

// ShardFromEnv finds the shard of a Slurm job array task or of a
// Kubernetes indexed Job (JOB_COMPLETION_INDEX, with shards given since
// Kubernetes does not export the count). Under Slurm, with shards given the
// shard is SLURM_ARRAY_TASK_ID of shards (so that a resubmitted task keeps
// its place in the original array); otherwise it is the task's position in
// its own array (SLURM_ARRAY_TASK_ID − _MIN of _COUNT). It reports false
// outside both.
func ShardFromEnv(shards int) (int, int, bool, error) {
	if id := os.Getenv("SLURM_ARRAY_TASK_ID"); id != "" && shards > 0 {
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || i >= shards {
			return 0, 0, false, fmt.Errorf("Slurm array task %q: not a shard of --shards %d (use task IDs 0 to %d)", id, shards, shards-1)
		}
		return i, shards, true, nil
	}
	if id := os.Getenv("SLURM_ARRAY_TASK_ID"); id != "" {
		i, err1 := strconv.Atoi(id)
		n, err2 := strconv.Atoi(os.Getenv("SLURM_ARRAY_TASK_COUNT"))
		lo := 0
		if m := os.Getenv("SLURM_ARRAY_TASK_MIN"); m != "" {
			lo, _ = strconv.Atoi(m)
		}
		if err1 != nil || err2 != nil || n < 1 || i-lo < 0 || i-lo >= n {
			return 0, 0, false, fmt.Errorf("Slurm array task %q of %q (min %d): not a usable shard (use --array=0-N-1, or pass --shards N when resubmitting some tasks)", id, os.Getenv("SLURM_ARRAY_TASK_COUNT"), lo)
		}
		return i - lo, n, true, nil
	}
	if id := os.Getenv("JOB_COMPLETION_INDEX"); id != "" {
		i, err := strconv.Atoi(id)
		if err != nil || shards < 1 || i < 0 || i >= shards {
			return 0, 0, false, fmt.Errorf("JOB_COMPLETION_INDEX %q: needs --shards N (the Job's completions) with 0 ≤ index < N", id)
		}
		return i, shards, true, nil
	}
	return 0, 0, false, nil
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.Log, format+"\n", args...)
}

// Run runs this shard's cells, making the original and Retrain models they
// need (once across all processes), skipping finished cells, and waiting
// for cells another live process is running.
func (r *Runner) Run() (Summary, error) {
	if r.Shards == 0 {
		r.Shards = 1
	}
	if r.Poll == 0 {
		r.Poll = 2 * time.Second
	}
	for _, d := range []string{originalsDir, cellsDir, locksDir} {
		if err := os.MkdirAll(filepath.Join(r.Out, d), 0o755); err != nil {
			return Summary{}, fmt.Errorf("results directory: %w", err)
		}
	}
	cells := r.dealt()
	sum := Summary{Cells: len(cells)}
	backends := make([]engine.Backend, len(r.Devices))
	for i, dev := range r.Devices {
		b, err := r.Open(dev)
		if err != nil {
			return sum, err
		}
		backends[i] = b
	}
	r.logf("sweep: shard %d/%d: %d cells, %d worker(s)", r.Shard, r.Shards, len(cells), len(r.Devices))
	busy, err := r.pool(backends, cells, &sum)
	if err != nil {
		return sum, err
	}
	// Cells another process was running: wait for them, or take them over
	// when that process died.
	for _, c := range busy {
		for !r.finished(c) {
			ran, err := r.runCell(backends[0], c, 0, 0)
			if err != nil {
				return sum, err
			}
			if ran {
				sum.Ran++
				break
			}
			time.Sleep(r.Poll)
		}
	}
	return sum, r.search(backends, &sum)
}

// dealt returns the cells of this process's shard. Only the fixed grid is
// dealt: a search's cells depend on results, so dealing them too would move
// fixed cells between shards as the searches grow, and a resubmitted shard
// would not find its own again.
func (r *Runner) dealt() []Cell { return Shard(r.Config.Expand(), r.Shard, r.Shards) }

// pool runs cells on one worker per backend and returns those that another
// live process holds.
func (r *Runner) pool(backends []engine.Backend, cells []Cell, sum *Summary) ([]Cell, error) {
	queue := make(chan int)
	errs := make(chan error, len(backends))
	var busy []Cell
	var wg sync.WaitGroup
	for _, b := range backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				ran, err := r.runCell(b, cells[i], i, len(cells))
				r.mu.Lock()
				switch {
				case err != nil:
				case ran:
					sum.Ran++
				case !r.finished(cells[i]):
					busy = append(busy, cells[i])
				default:
					sum.Skipped++
				}
				r.mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range cells {
		select {
		case queue <- i:
		case err = <-errs:
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return busy, err
}

// search runs the learning-rate searches until every one is complete.
// Each pass replays them over the results so far and runs the cells they
// wait for that no live process holds. Search cells belong to no shard: a
// later round is decided only when the round before has ended, so every
// process that has finished its own cells works on the searches until
// they are done, and none can leave a round unfinished by exiting.
func (r *Runner) search(backends []engine.Backend, sum *Summary) error {
	logged := map[string]string{}
	stalled := "" // the plan of a pass that found nothing to run
	for {
		plan := r.Config.Plan(r.Out)
		if err := writeSearches(r.Out, plan.Searches); err != nil {
			return err
		}
		var todo []Cell
		queued := map[string]bool{}
		for _, s := range plan.Searches {
			if line := s.describe(); logged[s.Key] != line {
				r.logf("sweep: search %s", line)
				logged[s.Key] = line
			}
			for _, c := range s.cells {
				if k := c.Key(); !s.Complete && !queued[k] && !r.finished(c) {
					queued[k] = true
					todo = append(todo, c)
				}
			}
		}
		switch {
		case plan.Done():
			return nil
		case len(todo) == 0 && stalled == plan.fingerprint():
			return fmt.Errorf("sweep: a learning-rate search waits for cells that have ended but cannot be read; run `qmulgpu report %s` to see which", r.Out)
		case len(todo) == 0:
			// Another process ended the last cells since this plan was
			// made: plan again, and stop only if nothing moves.
			stalled = plan.fingerprint()
			continue
		}
		stalled = ""
		// Each shard starts at its own place in the list, so that processes
		// that reach this point together do not all wait on one lock.
		k := len(todo) * r.Shard / r.Shards
		todo = append(todo[k:], todo[:k]...)
		ran := sum.Ran
		if _, err := r.pool(backends, todo, sum); err != nil {
			return err
		}
		if sum.Ran == ran {
			time.Sleep(r.Poll) // everything it waits for is held by other processes
		}
	}
}

func (r *Runner) cellDir(c Cell) string { return filepath.Join(r.Out, cellsDir, c.Key()) }

func (r *Runner) lockPath(key string) string {
	return filepath.Join(r.Out, locksDir, key+".lock")
}

// done reports whether a run directory holds finished results: a
// metrics.json (written last, atomically) that reads as a JSON object. A
// damaged one counts as unfinished, so that the run is made again.
func done(dir string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		return false
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) > 0
}

// cellDone reports whether a cell directory holds whole results (see
// readCellMetrics).
func cellDone(dir string) bool {
	_, err := readCellMetrics(dir)
	return err == nil
}

// runCell runs one cell unless it is finished or another live process
// holds it; it reports whether it ran it.
func (r *Runner) runCell(b engine.Backend, c Cell, i, n int) (bool, error) {
	dir := r.cellDir(c)
	if r.finished(c) {
		r.logf("sweep: [%d/%d] %s: finished earlier", i+1, n, c)
		return false, nil
	}
	l, ok, err := r.take(c.Key())
	if err != nil || !ok {
		return false, err
	}
	defer r.release(l, dir)
	if r.finished(c) {
		return false, nil
	}
	if err := r.dropDamaged(dir, c); err != nil {
		return false, err
	}
	retrain := c.retrain()
	retrainDir := r.cellDir(retrain)
	ckpt, err := r.ensureOriginal(b, c.Original)
	if err != nil {
		return false, err
	}
	err = r.ensure(c.RetrainKey(), retrainDir, cellDone, func() error {
		if err := r.dropDamaged(retrainDir, retrain); err != nil {
			return err
		}
		return r.unlearn(b, ckpt, retrain, "")
	})
	if err != nil || cellEnded(dir) { // only its Retrain cell was damaged
		return err == nil, err
	}
	t := time.Now()
	if c.Method == originalMethod {
		return true, r.evaluateOriginal(b, ckpt, c, filepath.Join(retrainDir, train.MetricsFile))
	}
	if err := r.unlearn(b, ckpt, c, filepath.Join(retrainDir, train.MetricsFile)); err != nil {
		return r.collapsed(dir, c, i, n, err)
	}
	m, err := qmul.ReadMetrics(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		return false, err
	}
	gap := 0.0
	if m.AvgGap != nil {
		gap = *m.AvgGap
	}
	r.logf("sweep: [%d/%d] %s: FA %.2f RA %.2f TA %.2f MIA %.2f gap %.2f (%.0fs)", i+1, n, c, m.FA, m.RA, m.TA, m.MIA, gap, time.Since(t).Seconds())
	for _, w := range m.MIAWarnings {
		r.logf("sweep: %s: warning: MIA %s", c, w)
	}
	return true, nil
}

// collapsed ends a cell whose unlearning failed with err: a collapse
// (train.ErrCollapsed) is a result of the cell's hyper-parameters, so it
// is recorded in collapsedFile, the sweep goes on and the report leaves
// that learning rate out of its choice; any other error stops the sweep.
func (r *Runner) collapsed(dir string, c Cell, i, n int, err error) (bool, error) {
	if !errors.Is(err, train.ErrCollapsed) {
		return false, err
	}
	if werr := atomicfile.WriteJSON(filepath.Join(dir, collapsedFile), collapse{Error: err.Error()}); werr != nil {
		return false, fmt.Errorf("cell %s: %w", dir, werr)
	}
	r.logf("sweep: [%d/%d] %s: collapsed (recorded; the report leaves this rate out): %v", i+1, n, c, err)
	return true, nil
}

// readCollapse reads a cell's collapsedFile; it reports false when there
// is none or it does not hold a message.
func readCollapse(dir string) (collapse, bool) {
	raw, err := os.ReadFile(filepath.Join(dir, collapsedFile))
	if err != nil {
		return collapse{}, false
	}
	var c collapse
	if json.Unmarshal(raw, &c) != nil || c.Error == "" {
		return collapse{}, false
	}
	return c, true
}

// cellEnded reports whether a cell directory holds whole results or a
// recorded collapse.
func cellEnded(dir string) bool {
	_, collapsed := readCollapse(dir)
	return collapsed || cellDone(dir)
}

// finished reports whether a cell has ended and its Retrain cell holds
// whole results.
func (r *Runner) finished(c Cell) bool {
	return cellEnded(r.cellDir(c)) && cellDone(r.cellDir(c.retrain()))
}

// dropDamaged removes a damaged metrics.json from a cell directory, so that
// the cell runs again from scratch.
func (r *Runner) dropDamaged(dir string, c Cell) error {
	path := filepath.Join(dir, train.MetricsFile)
	if _, err := os.Stat(path); err != nil {
		return nil // not run yet
	}
	_, err := readCellMetrics(dir)
	if err == nil {
		return nil
	}
	r.logf("sweep: %s: %v; running it again", c, err)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cell %s: %w", dir, err)
	}
	return nil
}

// ensure makes dir's results with build unless finished reports them
// made, under a lock shared by all processes; while another live process
// makes them it waits.
func (r *Runner) ensure(key, dir string, finished func(dir string) bool, build func() error) error {
	waiting := false
	for !finished(dir) {
		l, ok, err := r.take(key)
		if err != nil {
			return err
		}
		if !ok {
			if !waiting {
				r.logf("sweep: waiting for %s (another process is making it)", dir)
				waiting = true
			}
			time.Sleep(r.Poll)
			continue
		}
		if finished(dir) {
			r.release(l, dir)
			return nil
		}
		err = build()
		r.release(l, dir)
		return err
	}
	return nil
}

// ensureOriginal trains (or resumes training) an original model once and
// returns its checkpoint.
func (r *Runner) ensureOriginal(b engine.Backend, o Original) (string, error) {
	dir := filepath.Join(r.Out, originalsDir, o.Key())
	err := r.ensure(o.Key(), dir, done, func() error {
		_, resumeErr := os.Stat(train.ResumePath(dir))
		q := o.Quant
		j := &train.Job{Data: o.Data, Model: o.Model, Recipe: o.Recipe,
			Meta:    map[string]string{qat.MetaKey: q.Meta()},
			Prepare: func(m *models.Model) error { return qat.Apply(b, m, q) },
			Out:     dir, Resume: resumeErr == nil, Force: resumeErr != nil, AllowCollapse: o.AllowCollapse, Command: r.Command,
			Backend: b, Threads: r.Threads}
		if r.Progress != nil {
			j.Progress = r.Progress()
		}
		r.logf("sweep: training original %s %s %s seed %d", o.Data.Dataset, o.Model.Arch, o.Quant, o.Recipe.Seed)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteJSON(filepath.Join(dir, "original.json"), o); err != nil {
			return err
		}
		_, err := j.Run()
		return err
	})
	return filepath.Join(dir, train.ModelFile), err
}

// startCell makes a cell's directory and writes the cell into it, so that
// the directory says what it holds before any result is there.
func (r *Runner) startCell(c Cell) (string, error) {
	dir := r.cellDir(c)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, atomicfile.WriteJSON(filepath.Join(dir, cellFile), c)
}

// evaluateOriginal writes the original model's metrics on the cell's forget
// set, against Retrain's, into the cell's directory.
func (r *Runner) evaluateOriginal(b engine.Backend, ckpt string, c Cell, reference string) error {
	dir, err := r.startCell(c)
	if err != nil {
		return err
	}
	j := &qmul.EvalJob{Checkpoint: ckpt, Forget: c.Forget, Reference: reference, Batch: 256, Backend: b}
	if d := c.Original.Data.Dir; d != "" {
		j.Data = func(spec train.DataSpec, err error) (train.DataSpec, error) {
			spec.Dir = d
			return spec, err
		}
	}
	rep, err := j.Unlearning()
	if err != nil {
		return fmt.Errorf("evaluating the original (%s): %w", c, err)
	}
	r.logf("sweep: %s: FA %.2f RA %.2f TA %.2f MIA %.2f gap %.2f", c, rep.FA, rep.RA, rep.TA, rep.MIA, *rep.AvgGap)
	return atomicfile.WriteJSON(filepath.Join(dir, train.MetricsFile), rep)
}

// unlearn runs a cell (retrain included) into its directory.
func (r *Runner) unlearn(b engine.Backend, ckpt string, c Cell, reference string) error {
	dir, err := r.startCell(c)
	if err != nil {
		return err
	}
	j := &qmul.Job{Checkpoint: ckpt, Method: c.Method, Forget: c.Forget, Hyper: c.Hyper, DataDir: c.Original.Data.Dir,
		Reference: reference, Out: dir, Force: true, Backend: b, Threads: r.Threads, Command: r.Command}
	if r.Progress != nil {
		j.Progress = r.Progress()
	}
	if qmul.FromScratch(c.Method) {
		j.Hyper.AllowCollapse = c.Original.AllowCollapse // Retrain is trained with the original's recipe
		r.logf("sweep: retraining without %s (%s %s %s seed %d)", c.Forget, c.Original.Data.Dataset, c.Original.Model.Arch, c.Original.Quant, c.Seed)
	}
	_, err = j.Run()
	return err
}
