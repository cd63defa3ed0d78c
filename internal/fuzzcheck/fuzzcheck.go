// Package fuzzcheck holds the invariants that the fuzz targets of every
// reader of outside input assert: memory bounded by the input, and errors
// that are one line a user can read.
package fuzzcheck

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// MaxMessage bounds the length of an error message about a file's
// contents (the file's path, which the caller adds, not counted).
const MaxMessage = 300

// Alloc runs f and fails t if it allocated more than base + perByte*n
// bytes in all, n being the input's size. The count covers every
// allocation of the process while f runs, which in a fuzz worker is f's.
func Alloc(t testing.TB, n int, base, perByte uint64, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, base+perByte*uint64(n); got > limit {
		t.Fatalf("allocated %d bytes for %d input bytes (limit %d)", got, n, limit)
	}
}

// goWords are signs of a message written for Go programmers, not users.
var goWords = []string{"Go struct", "Go value", "interface {}", "%!", "[]uint8", "[]interface", "map[string]", "*json.", "json: ",
	"yaml: ", "goroutine", "runtime error", "torchimport.", "safetensors.Tensor", "main.", "reflect"}

// Message fails t unless err (when not nil) is one line of at most
// MaxMessage bytes without Go's type names.
func Message(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if msg == "" || strings.ContainsAny(msg, "\n\r") || len(msg) > MaxMessage {
		t.Fatalf("error of %d bytes, want one line of at most %d: %.500q", len(msg), MaxMessage, msg)
	}
	own := unquoted(msg)
	for _, w := range goWords {
		if strings.Contains(own, w) {
			t.Fatalf("error %q speaks Go (%q)", msg, w)
		}
	}
}

// unquoted is msg without its quoted strings (which quote the input, and
// may hold anything).
func unquoted(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if msg[i] == '"' {
			if q, err := strconv.QuotedPrefix(msg[i:]); err == nil {
				i += len(q) - 1
				continue
			}
		}
		b.WriteByte(msg[i])
	}
	return b.String()
}

// Read runs read, failing t if it allocated more than base + perByte*n
// bytes (see Alloc) or returned an error that Message refuses. It returns
// what read returned and whether read succeeded.
func Read[T any](t testing.TB, n int, base, perByte uint64, read func() (T, error)) (T, bool) {
	t.Helper()
	var v T
	var err error
	Alloc(t, n, base, perByte, func() { v, err = read() })
	Message(t, err)
	return v, err == nil
}
