package kernelgen

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// token is one C++ token of a kernel source and the line it starts on.
type token struct {
	text string
	line int
}

// defineRE matches the #defines the generator records: a name and a
// decimal integer, nothing else on the line.
var defineRE = regexp.MustCompile(`^#\s*define\s+([A-Za-z_]\w*)\s+([0-9]+)\s*$`)

// define is an integer #define and where it is.
type define struct {
	value int
	at    string // file:line
}

// lexer splits one file into tokens. Comments vanish, string and
// character literals are single tokens, and preprocessor lines yield no
// tokens: integer #defines are recorded, the rest ignored.
type lexer struct {
	path    string
	src     string
	i, line int
	bol     bool // only white space since the line began
	toks    []token
	defines map[string]define
}

// lex returns the tokens and integer #defines of src, read from path.
func lex(path string, src []byte) ([]token, map[string]define, error) {
	l := &lexer{path: path, src: string(src), line: 1, bol: true, defines: map[string]define{}}
	for l.i < len(l.src) {
		if err := l.next(); err != nil {
			return nil, nil, err
		}
	}
	return l.toks, l.defines, nil
}

func (l *lexer) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", l.path, line, fmt.Sprintf(format, args...))
}

// next consumes one token, comment, preprocessor line or white space.
func (l *lexer) next() error {
	c := l.src[l.i]
	rest := l.src[l.i:]
	switch {
	case c == '\n':
		l.line++
		l.bol = true
		l.i++
		return nil
	case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
		l.i++
		return nil
	case c == '#' && l.bol:
		return l.directive()
	case strings.HasPrefix(rest, "//"):
		l.skipTo("\n", false)
		return nil
	case strings.HasPrefix(rest, "/*"):
		start := l.line
		if !l.skipTo("*/", true) {
			return l.errorf(start, "unterminated comment")
		}
		return nil
	}
	l.bol = false
	start := l.i
	switch {
	case c == '"' || c == '\'':
		if err := l.literal(c); err != nil {
			return err
		}
	case isIdentStart(c) || isDigit(c):
		for l.i < len(l.src) && (isIdentStart(l.src[l.i]) || isDigit(l.src[l.i]) || (isDigit(c) && l.src[l.i] == '.')) {
			l.i++
		}
	default:
		l.i++
	}
	l.toks = append(l.toks, token{l.src[start:l.i], l.line})
	return nil
}

// skipTo moves past the next end (or to the end of the source, reporting
// false); with past set the end itself is consumed. Newlines are counted.
func (l *lexer) skipTo(end string, past bool) bool {
	j := strings.Index(l.src[l.i:], end)
	if j < 0 {
		l.line += strings.Count(l.src[l.i:], "\n")
		l.i = len(l.src)
		return false
	}
	if past {
		j += len(end)
	}
	l.line += strings.Count(l.src[l.i:l.i+j], "\n")
	l.i += j
	return true
}

// directive reads a preprocessor line (with its backslash continuations)
// and records it when it is an integer #define.
func (l *lexer) directive() error {
	start := l.line
	var text strings.Builder
	for {
		j := strings.IndexByte(l.src[l.i:], '\n')
		if j < 0 {
			j = len(l.src) - l.i
		}
		part := l.src[l.i : l.i+j]
		l.i += j
		if !strings.HasSuffix(part, "\\") || l.i >= len(l.src) {
			text.WriteString(part)
			break
		}
		text.WriteString(strings.TrimSuffix(part, "\\"))
		l.i++ // the newline
		l.line++
	}
	m := defineRE.FindStringSubmatch(strings.TrimSpace(text.String()))
	if m == nil {
		return nil
	}
	v, err := strconv.Atoi(m[2])
	if err != nil {
		return l.errorf(start, "#define %s %s: %v", m[1], m[2], err)
	}
	l.defines[m[1]] = define{v, fmt.Sprintf("%s:%d", l.path, start)}
	return nil
}

// literal consumes a string or character literal opened by quote.
func (l *lexer) literal(quote byte) error {
	l.i++
	for l.i < len(l.src) {
		switch l.src[l.i] {
		case '\\':
			l.i += 2
			continue
		case '\n':
			return l.errorf(l.line, "unterminated literal")
		case quote:
			l.i++
			return nil
		}
		l.i++
	}
	return l.errorf(l.line, "unterminated literal")
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdent(s string) bool { return s != "" && isIdentStart(s[0]) }
