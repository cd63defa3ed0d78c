package sweep

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testLease = time.Minute

// fakeClock is a monotonic clock the test moves by hand.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }

// contender is a process's locker with its own fake clock and no
// background heartbeat.
func contender(start time.Duration) (*locker, *fakeClock) {
	c := &fakeClock{t: start}
	return newLocker(c.now, testLease, 0), c
}

// deadLock writes the lock line of a process that is gone.
func deadLock(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("0123456789abcdef deadhost 1 0000000000000007\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustTake(t *testing.T, k *locker, path string) *lock {
	t.Helper()
	l, ok, err := k.tryLock(path)
	if err != nil || !ok {
		t.Fatalf("tryLock %s: %v %v, want the lock", path, ok, err)
	}
	return l
}

func mustNotTake(t *testing.T, k *locker, path, why string) {
	t.Helper()
	l, ok, err := k.tryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		l.unlock()
		t.Fatalf("lock taken although %s", why)
	}
}

// TestTryLockFreeAndHeld: a free lock is taken at once; a held one is not,
// whatever the contender's clock says, while its holder beats.
func TestTryLockFreeAndHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	holder, _ := contender(0)
	other, clock := contender(0)
	l := mustTake(t, holder, path)
	for range 5 {
		mustNotTake(t, other, path, "its holder renewed it")
		clock.t += 10 * testLease
		if !l.renew() {
			t.Fatal("a held lock could not be renewed")
		}
	}
	// The holder never judges its own lock stale.
	mustNotTake(t, holder, path, "this process holds it")
	l.unlock()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("lock file left after unlock")
	}
	mustTake(t, other, path).unlock()
}

// TestStaleLockHasOneTaker races contenders, each with its own clock, on a
// lock whose holder died: exactly one takes it, and nothing is left once it
// unlocks.
func TestStaleLockHasOneTaker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	for trial := range 100 {
		deadLock(t, path)
		const n = 8
		lockers := make([]*locker, n)
		for i := range lockers {
			k, c := contender(time.Duration(i) * time.Hour)
			mustNotTake(t, k, path, "it was seen for the first time")
			c.t += testLease
			lockers[i] = k
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []*lock
		for _, k := range lockers {
			wg.Go(func() {
				<-start
				l, ok, err := k.tryLock(path)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("trial %d: %d processes took the stale lock", trial, len(winners))
		}
		if tokenOf(readLine(path)) != winners[0].token {
			t.Fatalf("trial %d: the lock file does not hold the taker's token", trial)
		}
		winners[0].unlock()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("trial %d: %v left after unlock", trial, left)
		}
	}
}

// TestLockIgnoresClockSkew: contenders whose clocks disagree with each
// other and with the file server (the lock's mtime) judge a lock only by
// whether its line changes during a lease of their own clock.
func TestLockIgnoresClockSkew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	holder, _ := contender(0)
	l := mustTake(t, holder, path)
	// The file server's clock is an hour behind: the lock looks old.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	a, clockA := contender(0)
	b, clockB := contender(1000 * time.Hour) // far ahead of a
	mustNotTake(t, a, path, "it was seen for the first time")
	mustNotTake(t, b, path, "it was seen for the first time")
	l.renew()
	clockA.t += 100 * testLease // a jumps ahead
	clockB.t += testLease
	mustNotTake(t, a, path, "its holder renewed it")
	mustNotTake(t, b, path, "its holder renewed it")

	// The holder stops; b's clock runs at half the speed of a's.
	clockA.t += testLease - 1
	clockB.t += (testLease - 1) / 2
	mustNotTake(t, a, path, "a lease has not passed on a's clock")
	mustNotTake(t, b, path, "a lease has not passed on b's clock")
	clockA.t++
	taken := mustTake(t, a, path)
	clockB.t += 10 * testLease
	mustNotTake(t, b, path, "a took it over and holds it")
	if l.renew() || !l.lost.Load() {
		t.Error("the old holder did not notice that its lock was taken over")
	}
	l.unlock()
	if tokenOf(readLine(path)) != taken.token {
		t.Error("the old holder's unlock removed the new holder's lock")
	}
	taken.unlock()
}

// TestLockDeadTakeoverIsCleared: a guard left by a contender that died in the
// middle of a takeover is removed once stale, and the lock is then taken.
func TestLockDeadTakeoverIsCleared(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	deadLock(t, path)
	guard := guardPath(path, tokenOf(readLine(path)))
	if err := os.WriteFile(guard, []byte("fedcba9876543210 deadhost 2 0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, clock := contender(0)
	mustNotTake(t, k, path, "it was seen for the first time")
	clock.t += testLease
	mustNotTake(t, k, path, "another contender's takeover was seen for the first time")
	clock.t += testLease - 1
	mustNotTake(t, k, path, "the takeover guard is not stale yet")
	clock.t++
	mustNotTake(t, k, path, "the stale guard is only removed in this call")
	if _, err := os.Stat(guard); !os.IsNotExist(err) {
		t.Fatal("the stale guard is still there")
	}
	mustTake(t, k, path).unlock()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%v left after unlock", left)
	}
}

// TestLockLateTakeoverGivesUp: a contender that judged a lock stale but tries
// after another one took it over removes its guard and does not take it.
func TestLockLateTakeoverGivesUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	deadLock(t, path)
	line := readLine(path)
	first, c1 := contender(0)
	late, c2 := contender(0)
	mustNotTake(t, first, path, "it was seen for the first time")
	mustNotTake(t, late, path, "it was seen for the first time")
	c1.t += testLease
	c2.t += testLease
	l := mustTake(t, first, path)
	// late read the old line before the takeover and acts on it now.
	if _, ok, err := late.takeOver(path, line); ok || err != nil {
		t.Fatalf("late takeover: %v %v, want nothing", ok, err)
	}
	if tokenOf(readLine(path)) != l.token {
		t.Fatal("a late takeover replaced the new holder's lock")
	}
	l.unlock()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%v left after unlock", left)
	}
}

func TestLockUnlockLeavesAnotherHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	k, _ := contender(0)
	l := mustTake(t, k, path)
	// Another process took the lock over (as after a long suspension).
	os.WriteFile(path, []byte("someoneelse host 2 0000000000000000\n"), 0o644)
	l.unlock()
	if tokenOf(readLine(path)) != "someoneelse" {
		t.Error("unlock removed another holder's lock")
	}
	mustNotTake(t, k, path, "another process holds it")
}

// TestLockHolderStoppedLongerThanLease stops a real holder process with
// SIGSTOP: its lock is taken over once a contender has seen it unchanged
// for a lease, and the holder, continued, finds that it lost the lock.
func TestLockHolderStoppedLongerThanLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), "QMUL_LOCK_HOLDER="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("holder said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	expect("held")

	// While it runs, its line changes, however far the contender's clock
	// moves.
	k, clock := contender(0)
	mustNotTake(t, k, path, "it was seen for the first time")
	first := readLine(path)
	waitFor(t, "a heartbeat", func() bool { return readLine(path) != first })
	clock.t += 100 * testLease
	mustNotTake(t, k, path, "its holder is running")

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the holder to stop", func() bool { return processState(cmd.Process.Pid) == "T" })
	mustNotTake(t, k, path, "a lease has not passed since its line last changed")
	clock.t += testLease
	l := mustTake(t, k, path)

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	expect("lost")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if tokenOf(readLine(path)) != l.token {
		t.Fatal("the continued holder overwrote the new holder's lock")
	}
	l.unlock()
}

// TestHelperLockHolder is the process TestLockHolderStoppedLongerThanLease
// stops: it takes the lock, says "held", and says "lost" when it finds the
// lock taken over.
func TestHelperLockHolder(t *testing.T) {
	path := os.Getenv("QMUL_LOCK_HOLDER")
	if path == "" {
		t.Skip("helper process only")
	}
	k := newLocker(monotonic(), 900*time.Millisecond, 100*time.Millisecond)
	l, ok, err := k.tryLock(path)
	if err != nil || !ok {
		fmt.Println("not taken:", err)
		os.Exit(1)
	}
	fmt.Println("held")
	<-l.done
	if l.lost.Load() {
		fmt.Println("lost")
	}
	os.Exit(0)
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// processState returns the state letter of a process (Linux).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	_, after, _ := strings.Cut(string(b), ") ")
	state, _, _ := strings.Cut(after, " ")
	return state
}

func TestSlurmTestConfigGivesEveryShardWork(t *testing.T) {
	c, err := Load("testdata/slurm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cells := c.Expand()
	if len(cells) != 12 {
		t.Fatalf("testdata/slurm.yaml expands to %d cells; scripts/test-slurm.sh expects 12", len(cells))
	}
	for i := 0; i < 4; i++ {
		if n := len(Shard(cells, i, 4)); n < 2 {
			t.Errorf("shard %d of 4 gets %d cells, want at least 2", i, n)
		}
	}
}

func TestSlurmShardsOfResubmittedTasks(t *testing.T) {
	t.Setenv("SLURM_ARRAY_TASK_ID", "3")
	t.Setenv("SLURM_ARRAY_TASK_MIN", "1")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "2") // sbatch --array=1,3
	if _, _, _, err := ShardFromEnv(0); err == nil {
		t.Error("task 3 of a 2-task array accepted without --shards")
	}
	i, n, ok, err := ShardFromEnv(4)
	if err != nil || !ok || i != 3 || n != 4 {
		t.Errorf("with --shards 4: %d/%d %v %v", i, n, ok, err)
	}
}

// TestLockRemoveStaleKeepsNewerFile: removing a stale file that was
// replaced meanwhile leaves the newer file in place.
func TestLockRemoveStaleKeepsNewerFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock.takeover.0")
	const newer = "fedcba9876543210 host 2 0000000000000000\n"
	if err := os.WriteFile(path, []byte(newer), 0o644); err != nil {
		t.Fatal(err)
	}
	k, _ := contender(0)
	k.removeStale(path, "0123456789abcdef deadhost 1 0000000000000000\n")
	if readLine(path) != newer {
		t.Fatal("a newer file was removed as stale")
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Fatalf("%v left, want only the newer file", left)
	}
	k.removeStale(path, newer)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%v left after removing the stale file", left)
	}
}

// TestLockUnlockTwice: a lock released both by its worker and by Release
// on a signal is released once.
func TestLockUnlockTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	k, _ := contender(0)
	l := mustTake(t, k, path)
	l.unlock()
	other := mustTake(t, k, path)
	l.unlock()
	if tokenOf(readLine(path)) != other.token {
		t.Fatal("a second unlock removed the next holder's lock")
	}
	other.unlock()
}
