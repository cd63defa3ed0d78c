package sweep

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Locks make each original, Retrain model and cell run exactly once across
// processes that share a results directory, possibly on different nodes of
// a cluster whose clocks disagree. No decision compares a time written by
// one machine (or a file server) with another machine's clock:
//
//   - A lock is a file created with O_EXCL (atomic on local file systems
//     and on NFS v3 and later) holding one line "TOKEN HOST PID BEAT": a
//     random token, where the holder runs, and a heartbeat counter.
//   - The holder keeps the file open and rewrites the line in place every
//     lease/9 with the counter increased (and fsyncs it), so that the file
//     changes while its holder lives. Before each beat it reads the file
//     by name: if another token is there, the lock was taken over (the
//     holder was suspended for a whole lease) and it stops and reports the
//     loss.
//   - A contender remembers, per lock file, the line it last read and when
//     it first read it, on its own monotonic clock. A lock is stale only
//     when the same line was read a whole lease apart; a changed line
//     restarts the wait. A process never judges a lock it holds itself.
//   - A stale lock with token T is taken over through a guard file named
//     after T, created with O_EXCL and holding the contender's new lock
//     line: the guard's creator reads the lock again, and if T is still
//     there renames the guard over the lock (rename is atomic) and reads
//     the lock once more to confirm that its own token is now there.
//     Contenders that fail to create the guard give up for now; a guard
//     created after the takeover finds another token in the lock and is
//     removed. So of any number of contenders exactly one takes a stale
//     lock over.
//   - A guard left by a contender that died in the middle of a takeover is
//     itself judged stale like a lock and removed by renaming it to a
//     private name, checking that the line there is the stale one (and
//     linking it back otherwise).

// defaultLease is how long a lock's line must stay unchanged, as seen by a
// contender, before the lock counts as abandoned.
const defaultLease = 45 * time.Second

// beatsPerLease is how many heartbeats a holder makes per lease.
const beatsPerLease = 9

// clock reads a monotonic clock: the time since some fixed instant.
type clock func() time.Duration

// monotonic is the process's monotonic clock.
func monotonic() clock {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

// sighting is a lock file's line and when it was first read.
type sighting struct {
	line  string
	since time.Duration
}

// locker takes and watches locks for one process.
type locker struct {
	now   clock
	lease time.Duration
	// heartbeat is how often holders renew; 0 leaves renewal to explicit
	// renew calls (tests).
	heartbeat time.Duration

	mu     sync.Mutex
	seen   map[string]sighting
	tokens map[string]bool // tokens of the locks this process holds
}

func newLocker(now clock, lease, heartbeat time.Duration) *locker {
	return &locker{now: now, lease: lease, heartbeat: heartbeat, seen: map[string]sighting{}, tokens: map[string]bool{}}
}

// lock is a held lock file.
type lock struct {
	path, token string
	owner       *locker
	f           *os.File
	beat        uint64
	stop, done  chan struct{}
	lost        atomic.Bool
	unlocked    sync.Once
}

func newToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// line is the lock file's content for a heartbeat; its length is fixed so
// that rewriting it in place leaves no tail of an older line.
func (l *lock) line() []byte {
	host, _ := os.Hostname()
	if host == "" || strings.ContainsAny(host, " \n") {
		host = "unknown"
	}
	return fmt.Appendf(nil, "%s %s %d %016x\n", l.token, host, os.Getpid(), l.beat)
}

// create makes the lock file at path if it does not exist and writes a
// fresh lock line into it; it reports false if the file exists.
func (k *locker) create(path string) (*lock, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &lock{path: path, token: newToken(), owner: k, f: f}
	if _, err := f.Write(l.line()); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return l, true, nil
}

// hold starts l's heartbeat and records it as this process's.
func (k *locker) hold(l *lock) *lock {
	k.mu.Lock()
	k.tokens[l.token] = true
	k.mu.Unlock()
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	if k.heartbeat > 0 {
		go l.beating(k.heartbeat)
	} else {
		close(l.done)
	}
	return l
}

// readLine returns the lock file's line ("" if it is gone or unreadable).
func readLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// tokenOf returns a lock line's token.
func tokenOf(line string) string {
	tok, _, _ := strings.Cut(line, " ")
	return tok
}

// stale reports whether line, just read from path, has been read before at
// least a lease ago on this process's clock. Lines of locks this process
// holds are never stale.
func (k *locker) stale(path, line string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tokens[tokenOf(line)] {
		return false
	}
	now := k.now()
	s, ok := k.seen[path]
	if !ok || s.line != line {
		k.seen[path] = sighting{line: line, since: now}
		return false
	}
	return now-s.since >= k.lease
}

// forget drops what is known of path's line.
func (k *locker) forget(path string) {
	k.mu.Lock()
	delete(k.seen, path)
	k.mu.Unlock()
}

// tryLock takes the lock at path, reporting false when a live process
// holds it, or its holder has not yet been seen silent for a whole lease,
// or another contender is taking it over.
func (k *locker) tryLock(path string) (*lock, bool, error) {
	l, ok, err := k.create(path)
	if err != nil {
		return nil, false, err
	}
	if ok {
		k.forget(path)
		return k.hold(l), true, nil
	}
	line := readLine(path)
	if line == "" || !k.stale(path, line) {
		return nil, false, nil
	}
	return k.takeOver(path, line)
}

// guardPath is the name of the guard for taking over the lock at path held
// by token.
func guardPath(path, token string) string {
	sum := sha256.Sum256([]byte(token))
	return path + ".takeover." + hex.EncodeToString(sum[:8])
}

// takeOver replaces the stale lock at path, whose line is line, with a new
// lock of this process's, unless another contender is doing so.
func (k *locker) takeOver(path, line string) (*lock, bool, error) {
	guard := guardPath(path, tokenOf(line))
	g, ok, err := k.create(guard)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		// Another contender is taking over, or died doing so.
		if gl := readLine(guard); gl != "" && k.stale(guard, gl) {
			k.removeStale(guard, gl)
		}
		return nil, false, nil
	}
	if readLine(path) != line { // renewed, released or already taken over
		g.f.Close()
		k.removeStale(guard, string(g.line()))
		return nil, false, nil
	}
	if err := os.Rename(guard, path); err != nil {
		g.f.Close()
		if errors.Is(err, fs.ErrNotExist) { // our guard was judged stale meanwhile
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if tokenOf(readLine(path)) != g.token {
		// Our guard was removed as stale and another contender's guard was
		// renamed into place instead; that lock has no holder and will go
		// stale.
		g.f.Close()
		return nil, false, nil
	}
	k.forget(path)
	k.forget(guard)
	g.path = path
	return k.hold(g), true, nil
}

// removeStale removes the file at path if its line is still line: it
// renames the file to a private name, checks the line there, and puts the
// file back if it was another one.
func (k *locker) removeStale(path, line string) {
	away := path + ".removing." + newToken()
	if os.Rename(path, away) != nil {
		return
	}
	if readLine(away) != line {
		os.Link(away, path) // fails only if a newer file is there already
	}
	os.Remove(away)
	k.forget(path)
}

// beating renews the lock every period until unlock or loss.
func (l *lock) beating(period time.Duration) {
	defer close(l.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if !l.renew() {
				return
			}
		}
	}
}

// renew checks that the lock file still holds l's token and rewrites its
// line with the next heartbeat count. It reports false, and marks the lock
// lost, if the lock was taken over or cannot be written.
func (l *lock) renew() bool {
	if tokenOf(readLine(l.path)) != l.token {
		l.lost.Store(true)
		return false
	}
	l.beat++
	if _, err := l.f.WriteAt(l.line(), 0); err != nil {
		l.lost.Store(true)
		return false
	}
	if err := l.f.Sync(); err != nil {
		l.lost.Store(true)
		return false
	}
	return true
}

// unlock releases the lock if it is still ours; later calls do nothing.
func (l *lock) unlock() {
	l.unlocked.Do(func() {
		close(l.stop)
		<-l.done
		if tokenOf(readLine(l.path)) == l.token {
			os.Remove(l.path)
		}
		l.f.Close()
		l.owner.mu.Lock()
		delete(l.owner.tokens, l.token)
		l.owner.mu.Unlock()
	})
}
