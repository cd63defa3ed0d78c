package sweep

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestStaleLockHasOneTaker races contenders on a stale lock many times:
// exactly one must win each time.
func TestStaleLockHasOneTaker(t *testing.T) {
	defer staleAfterForTest(t, 50*time.Millisecond)()
	dir := t.TempDir()
	for trial := 0; trial < 100; trial++ {
		path := filepath.Join(dir, "x.lock")
		os.WriteFile(path, []byte("dead host 1\n"), 0o644)
		old := time.Now().Add(-time.Second)
		os.Chtimes(path, old, old)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []*lock
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, ok, err := tryLock(path)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("trial %d: %d processes took the stale lock", trial, len(winners))
		}
		winners[0].unlock()
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("trial %d: lock file left after unlock", trial)
		}
	}
}

func TestUnlockLeavesAnotherHoldersLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, ok, err := tryLock(path)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	// Another process took the lock over (as after a long suspension).
	os.WriteFile(path, []byte("someoneelse host 2\n"), 0o644)
	l.unlock()
	if owner(path) != "someoneelse" {
		t.Error("unlock removed another holder's lock")
	}
	if _, ok, _ := tryLock(path); ok {
		t.Error("a fresh lock held by another process was taken")
	}
}

func TestSlurmTestConfigGivesEveryShardWork(t *testing.T) {
	c, err := Load("testdata/slurm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cells := c.Expand()
	if len(cells) != 10 {
		t.Fatalf("testdata/slurm.yaml expands to %d cells; scripts/test-slurm.sh expects 10", len(cells))
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
