//go:build !linux

package rundir

// exchange renames the old folder aside and the staged one into place
// (only Linux exchanges two folders atomically).
func exchange(staged, target string) error { return renameAside(staged, target) }
