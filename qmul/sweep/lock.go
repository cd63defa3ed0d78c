package sweep

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Locks are files created with O_EXCL, which is atomic on local file
// systems and NFS (v3 and later). The holder refreshes the file's
// modification time; a lock not refreshed for staleAfter belongs to a dead
// process (a killed shard) and is taken over by renaming it away, which
// only one contender can do.

const heartbeat = 5 * time.Second

// staleAfter is how long an unrefreshed lock stays valid (a variable for
// tests).
var staleAfter = 45 * time.Second

// lock is a held lock file.
type lock struct {
	path string
	stop chan struct{}
	done chan struct{}
}

// tryLock takes the lock at path, reporting false when a live process
// holds it.
func tryLock(path string) (*lock, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			host, _ := os.Hostname()
			fmt.Fprintf(f, "%s %d %s\n", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
			f.Close()
			l := &lock{path: path, stop: make(chan struct{}), done: make(chan struct{})}
			go l.refresh()
			return l, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		info, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Since(info.ModTime()) < staleAfter {
			return nil, false, nil
		}
		// Stale: take it over; a failed rename means another contender did.
		os.Rename(path, fmt.Sprintf("%s.stale.%d", path, os.Getpid()))
		os.Remove(fmt.Sprintf("%s.stale.%d", path, os.Getpid()))
	}
	return nil, false, nil
}

func (l *lock) refresh() {
	defer close(l.done)
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			os.Chtimes(l.path, now, now)
		}
	}
}

// unlock releases the lock.
func (l *lock) unlock() {
	close(l.stop)
	<-l.done
	os.Remove(l.path)
}
