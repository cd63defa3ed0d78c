package rundir

import (
	"os"
	"strings"
)

// renameAside replaces target by staged in two renames, leaving the old
// run where staged was (as an atomic exchange would).
func renameAside(staged, target string) error {
	old := strings.TrimSuffix(staged, ".partial") + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(target, old); err != nil {
		return err
	}
	if err := os.Rename(staged, target); err != nil {
		os.Rename(old, target)
		return err
	}
	return os.Rename(old, staged)
}
