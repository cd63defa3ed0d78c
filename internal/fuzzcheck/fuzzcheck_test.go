package fuzzcheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records whether Fatalf was called.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                       {}
func (r *recorder) Fatalf(string, ...interface{}) { r.failed = true }

var sink []byte

func TestAlloc(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		input int
		fail  bool
	}{
		{"nothing", 0, 10, false},
		{"within the bound", 1 << 10, 100, false}, // limit 64 kB + 100 B a byte
		{"past the bound", 1 << 20, 100, true},
	} {
		r := &recorder{TB: t}
		Alloc(r, tc.input, 64<<10, 100, func() {
			if tc.size > 0 {
				sink = make([]byte, tc.size)
			}
		})
		if r.failed != tc.fail {
			t.Errorf("%s: failed %v, want %v", tc.name, r.failed, tc.fail)
		}
	}
}

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		fail bool
	}{
		{nil, false},
		{errors.New(`tensor "conv.weight" holds NaN`), false},
		{errors.New(`name "*torchimport.pyDict" refused`), false}, // quoted input may hold anything
		{errors.New(""), true},
		{errors.New("two\nlines"), true},
		{errors.New(strings.Repeat("x", MaxMessage+1)), true},
		{fmt.Errorf("got %T", map[string]any{}), true},
		{errors.New("json: cannot unmarshal number into Go struct field"), true},
	} {
		r := &recorder{TB: t}
		Message(r, tc.err)
		if r.failed != tc.fail {
			t.Errorf("Message(%q): failed %v, want %v", fmt.Sprint(tc.err), r.failed, tc.fail)
		}
	}
}

func TestRead(t *testing.T) {
	r := &recorder{TB: t}
	if v, ok := Read(r, 1, 1<<20, 1, func() (int, error) { return 7, nil }); v != 7 || !ok || r.failed {
		t.Errorf("Read of a success = %d, %v (failed %v)", v, ok, r.failed)
	}
	if _, ok := Read(r, 1, 1<<20, 1, func() (int, error) { return 0, errors.New("bad header") }); ok || r.failed {
		t.Errorf("Read of a clear error: ok %v, failed %v", ok, r.failed)
	}
	if _, ok := Read(r, 1, 1<<20, 1, func() (int, error) { return 0, errors.New("a\nb") }); ok || !r.failed {
		t.Errorf("Read of a two-line error: ok %v, failed %v", ok, r.failed)
	}
}
