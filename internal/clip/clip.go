// Package clip shortens text taken from outside input for error messages,
// so that a message stays one readable line whatever the input holds.
package clip

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// QuoteLen is the most bytes Quote returns.
const QuoteLen = 50

// Quote quotes s as Go and Python do (escaping control characters and
// invalid UTF-8), cut so that the result has at most QuoteLen bytes; a cut
// is marked with "…".
func Quote(s string) string { return QuoteN(s, QuoteLen) }

// QuoteN is Quote with a limit of n bytes.
func QuoteN(s string, n int) string {
	if len(s) <= n {
		if q := strconv.Quote(s); len(q) <= n {
			return q
		}
	}
	for cut := min(len(s), n); cut > 0; cut-- {
		if cut < len(s) && !utf8.RuneStart(s[cut]) {
			continue
		}
		if q := strconv.Quote(s[:cut]) + "…"; len(q) <= n {
			return q
		}
	}
	return `""…`
}

// String shortens s to at most n bytes (and whole UTF-8 characters),
// marking a cut with "…". It does not escape anything.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Shape formats a shape (or strides, offsets) as [2 3 4], showing at most
// its first 6 numbers and then how many there are.
func Shape[T int | int64](dims []T) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range dims {
		if i == 6 {
			fmt.Fprintf(&b, " … (%d in all)", len(dims))
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(int64(d), 10))
	}
	b.WriteByte(']')
	return b.String()
}
