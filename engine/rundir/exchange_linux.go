package rundir

import (
	"errors"

	"golang.org/x/sys/unix"
)

// exchange swaps two folders in one atomic rename, or, where the file
// system cannot, renames the old one aside first.
func exchange(staged, target string) error {
	err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return renameAside(staged, target)
	}
	return err
}
