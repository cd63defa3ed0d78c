// Package rundir stages a run's output folder so that the folder always
// holds one whole run or none: a run writes into a staging folder beside its
// target (same parent, so the same file system) and Commit swaps it into
// place when the run is complete.
//
// The staging folder of DIR is DIR's hidden sibling .DIR.partial (see
// StagingPath). A run that stops part-way (killed, interrupted, diverged)
// leaves its epoch checkpoints there, so a resumed run finds them at a
// fixed place; starting over removes it.
//
// Commit exchanges the staging folder and the target in one atomic rename
// (Linux's RENAME_EXCHANGE), so a reader, or a kill at any moment, sees the
// old run or the new one. Files in the target that are not part of a run
// (the run names them) are linked into the new run first, so they survive.
// Where the file system cannot exchange (some network file systems), the
// old folder is first renamed aside: a kill between the two renames leaves
// the target missing and the old run in .DIR.old.
package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// StagingPath is the folder a run into target is staged in.
func StagingPath(target string) string {
	dir, base := filepath.Split(filepath.Clean(target))
	return filepath.Join(dir, "."+base+".partial")
}

// Stage is a run being written: into Dir, for Target.
type Stage struct {
	Target string
	Dir    string
	// runFiles are the names a run writes: at Commit, those in the old
	// target are dropped, every other file is kept.
	runFiles []string
}

// testHook, when set by tests, is called at each step of Commit.
var testHook func(step string)

func hook(step string) {
	if testHook != nil {
		testHook(step)
	}
}

// Begin prepares a run into target whose files are named runFiles. With
// resume it keeps the staging folder's contents (the caller checks that
// they are there); otherwise it starts from an empty staging folder. The
// target must be a folder (or absent) without subfolders: those could not
// be carried into the new run.
func Begin(target string, runFiles []string, resume bool) (*Stage, error) {
	target = filepath.Clean(target)
	if resolved, err := filepath.EvalSymlinks(target); err == nil {
		target = resolved
	}
	s := &Stage{Target: target, Dir: StagingPath(target), runFiles: runFiles}
	if _, err := s.foreign(); err != nil {
		return nil, err
	}
	if !resume {
		if err := os.RemoveAll(s.Dir); err != nil {
			return nil, fmt.Errorf("staging folder: %w", err)
		}
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	return s, nil
}

// foreign lists the target's files that are not run files.
func (s *Stage) foreign() ([]string, error) {
	entries, err := os.ReadDir(s.Target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("output folder %s holds the folder %s: a run folder holds only files; choose another folder", s.Target, e.Name())
		}
		if !slices.Contains(s.runFiles, e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Has reports whether the staging folder holds a file.
func (s *Stage) Has(name string) bool {
	_, err := os.Stat(filepath.Join(s.Dir, name))
	return err == nil
}

// Path is a file's path in the staging folder.
func (s *Stage) Path(name string) string { return filepath.Join(s.Dir, name) }

// Commit puts the complete run in place of the target: the target's other
// files are linked into the run, the two folders are exchanged atomically
// and the old run is removed.
func (s *Stage) Commit() error {
	keep, err := s.foreign()
	if err != nil {
		return err
	}
	for _, name := range keep {
		dst := filepath.Join(s.Dir, name)
		if _, err := os.Lstat(dst); err == nil {
			continue // the run wrote its own
		}
		if err := os.Link(filepath.Join(s.Target, name), dst); err != nil {
			return fmt.Errorf("keeping %s in the new run: %w", name, err)
		}
	}
	hook("linked")
	if err := syncDir(s.Dir); err != nil {
		return err
	}
	if _, err := os.Stat(s.Target); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(s.Dir, s.Target); err != nil {
			return fmt.Errorf("moving the run into place: %w", err)
		}
		hook("renamed")
		return syncDir(filepath.Dir(s.Target))
	}
	if err := exchange(s.Dir, s.Target); err != nil {
		return fmt.Errorf("moving the run into place: %w", err)
	}
	hook("exchanged")
	if err := syncDir(filepath.Dir(s.Target)); err != nil {
		return err
	}
	// The staging path now holds the old run.
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("removing the old run: %w", err)
	}
	return nil
}

// Discard removes the staging folder and what it holds.
func (s *Stage) Discard() error { return os.RemoveAll(s.Dir) }

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
