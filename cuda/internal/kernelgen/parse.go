// Package kernelgen reads the CUDA kernels of kernels/*.cu and generates
// what launches them: one typed Go launcher per kernel, in one file per
// kernel source file (cuda/X_kernels.go for kernels/X.cu), and the
// emulated device's kernel table (cuda/emu/kernels.inc), which checks at
// compile time that each kernel has the signature read here.
//
// It reads only the restricted form the project's kernels are written in:
//
//	extern "C" __global__ void NAME(PARAM, ...)
//	{
//
// where each PARAM is `[const] T* name` for T one of the scalar types
// below, `S name` for S float, double, int or long long, or `S name` for
// S a struct defined earlier in the same file as
//
//	struct S {
//	    T field;
//	    T field[LEN];
//	};
//
// with LEN a decimal number or an integer #define. Anything else that
// declares a kernel (a __global__ function without extern "C", another
// return type, templates, references, qualifiers such as __restrict__)
// is an error naming its file and line.
package kernelgen

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Scalar is a C scalar type and the Go type that has its size and layout.
type Scalar struct {
	C, Go string
	Size  int
	// ByValue reports whether a kernel may take it by value (the Go
	// binding packs int32, int64, float32 and float64 arguments).
	ByValue bool
}

var scalars = map[string]*Scalar{
	"float":              {"float", "float32", 4, true},
	"double":             {"double", "float64", 8, true},
	"int":                {"int", "int32", 4, true},
	"long long":          {"long long", "int64", 8, true},
	"unsigned char":      {"unsigned char", "uint8", 1, false},
	"unsigned int":       {"unsigned int", "uint32", 4, false},
	"unsigned long long": {"unsigned long long", "uint64", 8, false},
}

// Source is what a set of kernel files declares.
type Source struct {
	Files   []*File
	Defines map[string]int // the integer #defines of every file
}

// File is one kernel source file.
type File struct {
	Path    string
	Kernels []*Kernel
	// Structs are the structs its kernels take by value, in the order
	// they are defined.
	Structs []*Struct
}

// Kernel is one extern "C" __global__ function.
type Kernel struct {
	Name   string
	Path   string
	Line   int
	Params []Param
}

// Param is one kernel parameter.
type Param struct {
	Name string
	Line int
	// Exactly one of Elem (a pointer to it), Scalar (by value) and
	// Struct (by value) is set.
	Elem   *Scalar
	Const  bool // a pointer to const
	Scalar *Scalar
	Struct *Struct
}

// CType is the parameter's type as C writes it: "const float*", "int",
// "qm_norm".
func (p Param) CType() string {
	switch {
	case p.Elem != nil && p.Const:
		return "const " + p.Elem.C + "*"
	case p.Elem != nil:
		return p.Elem.C + "*"
	case p.Scalar != nil:
		return p.Scalar.C
	}
	return p.Struct.Name
}

// Struct is a struct passed to kernels by value.
type Struct struct {
	Name        string
	Path        string
	Line        int
	Fields      []Field
	Size, Align int // as the C compiler lays it out
}

// Field is one struct member: a scalar, or an array of Len scalars.
type Field struct {
	Name string
	Type *Scalar
	Len  int // 0 for a scalar
}

// Input is one source file's path (as messages and generated comments
// name it) and contents.
type Input struct {
	Path string
	Data []byte
}

// Parse reads the kernels of the inputs. Kernels may only be defined in
// .cu files; .cuh files contribute their #defines.
func Parse(inputs []Input) (*Source, error) {
	src := &Source{Defines: map[string]int{}}
	toks := make([][]token, len(inputs))
	where := map[string]string{}
	for i, in := range inputs {
		t, defs, err := lex(in.Path, in.Data)
		if err != nil {
			return nil, err
		}
		toks[i] = t
		for name, d := range defs {
			if v, ok := src.Defines[name]; ok && v != d.value {
				return nil, fmt.Errorf("%s: #define %s %d, but %d at %s", d.at, name, d.value, v, where[name])
			}
			src.Defines[name], where[name] = d.value, d.at
		}
	}
	seen := map[string]*Kernel{}
	for i, in := range inputs {
		p := &parser{path: in.Path, toks: toks[i], defines: src.Defines, structs: map[string]*structDef{},
			header: filepath.Ext(in.Path) != ".cu"}
		f, err := p.file()
		if err != nil {
			return nil, err
		}
		for _, k := range f.Kernels {
			if prev, ok := seen[k.Name]; ok {
				return nil, fmt.Errorf("%s:%d: kernel %s is also defined at %s:%d", k.Path, k.Line, k.Name, prev.Path, prev.Line)
			}
			seen[k.Name] = k
		}
		src.Files = append(src.Files, f)
	}
	return src, nil
}

// parser reads the declarations of one file.
type parser struct {
	path    string
	toks    []token
	pos     int
	header  bool
	defines map[string]int
	structs map[string]*structDef
}

// structDef is a struct defined at file level: parsed, or the reason it
// cannot be a kernel parameter (reported only if one uses it).
type structDef struct {
	s   *Struct
	err error
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.path, line, fmt.Sprintf(format, args...))
}

// peek returns the token n ahead, or an empty one past the end.
func (p *parser) peek(n int) token {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	last := 0
	if len(p.toks) > 0 {
		last = p.toks[len(p.toks)-1].line
	}
	return token{"", last}
}

// file scans the whole file for kernels and file-level structs.
func (p *parser) file() (*File, error) {
	f := &File{Path: p.path}
	used := map[*Struct]bool{}
	depth := 0
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch {
		case t.text == "{":
			depth++
		case t.text == "}":
			depth--
		case t.text == "extern" && p.peek(1).text == `"C"`:
			k, err := p.kernel()
			if err != nil {
				return nil, err
			}
			f.Kernels = append(f.Kernels, k)
			for _, prm := range k.Params {
				if prm.Struct != nil && !used[prm.Struct] {
					used[prm.Struct] = true
					f.Structs = append(f.Structs, prm.Struct)
				}
			}
			continue
		case t.text == "__global__":
			return nil, p.errorf(t.line, `a kernel must be declared extern "C" __global__ void NAME(...)`)
		case t.text == "struct" && depth == 0 && isIdent(p.peek(1).text) && p.peek(2).text == "{":
			p.structs[p.peek(1).text] = p.structDef()
			continue
		}
		p.pos++
	}
	sortStructs(f.Structs)
	return f, nil
}

// kernel reads `extern "C" __global__ void NAME(PARAMS) {`, leaving the
// body's opening brace as the next token.
func (p *parser) kernel() (*Kernel, error) {
	at := p.peek(0).line
	if p.header {
		return nil, p.errorf(at, "kernels are defined in .cu files, not in headers")
	}
	name := p.peek(4).text
	if p.peek(2).text != "__global__" || p.peek(3).text != "void" || !isIdent(name) || strings.HasPrefix(name, "__") ||
		p.peek(5).text != "(" {
		return nil, p.errorf(at, `cannot parse a kernel here: want extern "C" __global__ void NAME(...)`)
	}
	k := &Kernel{Name: name, Path: p.path, Line: at}
	p.pos += 6
	var param []token
	for {
		t := p.peek(0)
		p.pos++
		switch t.text {
		case "":
			return nil, p.errorf(at, "kernel %s: its parameter list does not end", k.Name)
		case ",", ")":
			if t.text == ")" && len(param) == 0 && len(k.Params) == 0 {
				break // no parameters
			}
			prm, err := p.param(k.Name, param, t.line)
			if err != nil {
				return nil, err
			}
			k.Params = append(k.Params, prm)
			param = param[:0]
		default:
			param = append(param, t)
		}
		if t.text == ")" {
			break
		}
	}
	if p.peek(0).text != "{" {
		return nil, p.errorf(p.peek(0).line, "kernel %s: want its body after the parameters, found %q", k.Name, p.peek(0).text)
	}
	return k, nil
}

// param reads one parameter: `[const] T* name` or `T name`.
func (p *parser) param(kernel string, toks []token, end int) (Param, error) {
	if len(toks) == 0 {
		return Param{}, p.errorf(end, "kernel %s: an empty parameter", kernel)
	}
	prm := Param{Line: toks[0].line}
	text := joinTokens(toks)
	bad := p.errorf(prm.Line, "kernel %s: cannot parse parameter %q (want [const] T* name or T name)", kernel, text)
	name := toks[len(toks)-1].text
	words := toks[:len(toks)-1]
	if !isIdent(name) || len(words) == 0 {
		return Param{}, bad
	}
	prm.Name = name
	pointer := words[len(words)-1].text == "*"
	if pointer {
		words = words[:len(words)-1]
		if len(words) > 0 && words[0].text == "const" {
			prm.Const = true
			words = words[1:]
		}
	}
	typ := joinTokens(words)
	for _, w := range words {
		if !isIdent(w.text) || w.text == "const" {
			return Param{}, bad
		}
	}
	s, isScalar := scalars[typ]
	switch {
	case typ == "":
		return Param{}, bad
	case pointer && isScalar:
		prm.Elem = s
	case pointer:
		return Param{}, p.errorf(prm.Line, "kernel %s: parameter %q: unknown type %s (pointers are to %s)",
			kernel, text, typ, scalarNames())
	case isScalar && s.ByValue:
		prm.Scalar = s
	case isScalar:
		return Param{}, p.errorf(prm.Line, "kernel %s: parameter %q: %s is not passed by value (use int, long long, float or double)",
			kernel, text, typ)
	default:
		d, ok := p.structs[typ]
		if !ok {
			return Param{}, p.errorf(prm.Line, "kernel %s: parameter %q: unknown type %s (a struct must be defined above, in this file)",
				kernel, text, typ)
		}
		if d.err != nil {
			return Param{}, d.err
		}
		prm.Struct = d.s
	}
	return prm, nil
}

// scalarNames lists the scalar types, for messages.
func scalarNames() string {
	names := make([]string, 0, len(scalars))
	for n := range scalars {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// joinTokens writes tokens back as C, a space between words.
func joinTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && isIdent(t.text) && (isIdent(toks[i-1].text) || toks[i-1].text == "*") {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}
