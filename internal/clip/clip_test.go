package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"conv1.weight", `"conv1.weight"`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", 100), `"` + strings.Repeat("x", 45) + `"…`},
		{strings.Repeat("\x00", 100), `"` + strings.Repeat(`\x00`, 11) + `"…`},
		{strings.Repeat("é", 100), `"` + strings.Repeat("é", 22) + `"…`},
	}
	for _, c := range cases {
		got := Quote(c.in)
		if got != c.want || len(got) > QuoteLen || !utf8.ValidString(got) {
			t.Errorf("Quote(%.20q) = %s, want %s (at most %d bytes)", c.in, got, c.want, QuoteLen)
		}
	}
}

func TestString(t *testing.T) {
	if got := String("héllo", 2); got != "h…" {
		t.Errorf("String cut inside a character: %q", got)
	}
	if got := String("short", 10); got != "short" {
		t.Errorf("String changed a short string: %q", got)
	}
}

func TestShape(t *testing.T) {
	if got := Shape([]int{}); got != "[]" {
		t.Errorf("Shape of a scalar: %s", got)
	}
	if got := Shape([]int64{1, 2, 3, 4, 5, 6, 7, 8}); got != "[1 2 3 4 5 6 … (8 in all)]" {
		t.Errorf("Shape of 8 dimensions: %s", got)
	}
}
