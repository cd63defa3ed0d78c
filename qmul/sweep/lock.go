package sweep

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Locks are files created with O_EXCL, which is atomic on local file
// systems and NFS (v3 and later). Each holds a random token; the holder
// refreshes the file's modification time, and a lock not refreshed for
// staleAfter belongs to a dead process (a killed shard). Taking over a
// stale lock is serialised by a second O_EXCL file, under which the
// staleness is checked again, so only one contender wins. A holder that
// finds its token gone (it was suspended long enough to look dead) stops
// refreshing and reports the loss.

const heartbeat = 5 * time.Second

// staleAfter is how long an unrefreshed lock stays valid (a variable for
// tests).
var staleAfter = 45 * time.Second

// lock is a held lock file.
type lock struct {
	path, token string
	stop, done  chan struct{}
	lost        atomic.Bool
}

func newToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// create makes the lock file if it does not exist.
func create(path string) (*lock, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	l := &lock{path: path, token: newToken(), stop: make(chan struct{}), done: make(chan struct{})}
	_, err = fmt.Fprintf(f, "%s %s %d %s\n", l.token, host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	go l.refresh()
	return l, true, nil
}

// stale reports whether the lock file at path exists and is stale.
func stale(path string) bool {
	info, err := os.Stat(path)
	return err == nil && time.Since(info.ModTime()) >= staleAfter
}

// tryLock takes the lock at path, reporting false when a live process
// holds it (or another contender is taking a stale one over).
func tryLock(path string) (*lock, bool, error) {
	l, ok, err := create(path)
	if ok || err != nil || !stale(path) {
		return l, ok, err
	}
	guard := path + ".takeover"
	if stale(guard) { // a contender died while taking over
		os.Remove(guard)
	}
	g, ok, err := create(guard)
	if !ok || err != nil {
		return nil, false, err
	}
	defer g.unlock()
	if !stale(path) { // refreshed or replaced meanwhile
		return nil, false, nil
	}
	away := fmt.Sprintf("%s.stale.%s", path, g.token)
	if err := os.Rename(path, away); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	os.Remove(away)
	return create(path)
}

// owner returns the token written in the lock file ("" if it is gone).
func owner(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	tok, _, _ := strings.Cut(string(b), " ")
	return tok
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
			if owner(l.path) != l.token || os.Chtimes(l.path, now, now) != nil {
				l.lost.Store(true)
				return
			}
		}
	}
}

// unlock releases the lock if it is still ours.
func (l *lock) unlock() {
	close(l.stop)
	<-l.done
	if owner(l.path) == l.token {
		os.Remove(l.path)
	}
}
