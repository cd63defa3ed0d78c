package kernelgen

import (
	"slices"
	"strconv"
)

// structDef reads `struct NAME { FIELDS };` at the parser's position,
// always moving past the struct's closing brace. A struct outside the
// restricted form is recorded with the reason.
func (p *parser) structDef() *structDef {
	start := p.peek(0).line
	name := p.peek(1).text
	p.pos += 3
	body := p.pos
	depth := 1
	for ; p.pos < len(p.toks) && depth > 0; p.pos++ {
		switch p.toks[p.pos].text {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	if depth > 0 {
		return &structDef{err: p.errorf(start, "struct %s does not end", name)}
	}
	s := &Struct{Name: name, Path: p.path, Line: start}
	fields := p.toks[body : p.pos-1]
	for len(fields) > 0 {
		end := slices.IndexFunc(fields, func(t token) bool { return t.text == ";" })
		if end < 0 {
			end = len(fields)
		}
		f, err := p.field(name, fields[:end])
		if err != nil {
			return &structDef{err: err}
		}
		s.Fields = append(s.Fields, f)
		fields = fields[min(end+1, len(fields)):]
	}
	if len(s.Fields) == 0 {
		return &structDef{err: p.errorf(start, "struct %s has no fields", name)}
	}
	layout(s)
	return &structDef{s: s}
}

// field reads `T name;` or `T name[LEN];` with T a scalar type.
func (p *parser) field(structName string, toks []token) (Field, error) {
	line := toks[0].line
	bad := p.errorf(line, "struct %s: cannot parse member %q (want T name; or T name[LEN]; with T a scalar type)",
		structName, joinTokens(toks))
	var f Field
	if n := len(toks); n >= 4 && toks[n-1].text == "]" && toks[n-3].text == "[" {
		count, err := p.length(toks[n-2])
		if err != nil {
			return Field{}, err
		}
		f.Len = count
		toks = toks[:n-3]
	}
	if len(toks) < 2 || !isIdent(toks[len(toks)-1].text) {
		return Field{}, bad
	}
	f.Name = toks[len(toks)-1].text
	typ, ok := scalars[joinTokens(toks[:len(toks)-1])]
	if !ok {
		return Field{}, bad
	}
	f.Type = typ
	return f, nil
}

// length reads an array length: a decimal number or an integer #define.
func (p *parser) length(t token) (int, error) {
	v, err := strconv.Atoi(t.text)
	if err != nil {
		var ok bool
		if v, ok = p.defines[t.text]; !ok {
			return 0, p.errorf(t.line, "array length %s is neither a number nor an integer #define", t.text)
		}
	}
	if v <= 0 {
		return 0, p.errorf(t.line, "array length %s is %d", t.text, v)
	}
	return v, nil
}

// layout sets s.Size and s.Align as C lays out a struct of scalars and
// arrays of scalars: each member at the next multiple of its scalar's
// size, the whole rounded up to the largest.
func layout(s *Struct) {
	off, align := 0, 1
	for _, f := range s.Fields {
		a := f.Type.Size
		off = (off + a - 1) / a * a
		off += a * max(f.Len, 1)
		align = max(align, a)
	}
	s.Size, s.Align = (off+align-1)/align*align, align
}

// sortStructs orders structs as their file defines them.
func sortStructs(ss []*Struct) {
	slices.SortFunc(ss, func(a, b *Struct) int { return a.Line - b.Line })
}
