package kernelgen

import (
	"bytes"
	"fmt"
	"go/format"
	gotoken "go/token"
	"strings"
)

// Go returns the launchers of f's kernels as a Go file of package cuda
// (build tag cuda). Each kernel qm_foo_bar becomes
//
//	func qmFooBar(PARAMS) kernelCall
//
// whose parameters have the kernel's names and Go types that match the C
// ones: dptr[T] for a pointer to T (dptr[float32] for float*), int32,
// int64, float32 and float64 for int, long long, float and double, and
// for a struct a pointer to a Go struct of the same layout, generated
// here too (its bytes are copied when the launch is queued, as C passes
// the struct by value; the pointer spares copying kilobytes in Go). The
// package defines dptr, devPtr, kernelCall and structArg (cuda/launch.go).
func Go(f *File) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s; DO NOT EDIT.\n\n//go:build cuda\n\npackage cuda\n", Header, f.Path)
	if len(f.Structs) > 0 {
		b.WriteString("\nimport \"unsafe\"\n")
	}
	for _, s := range f.Structs {
		writeStruct(&b, s)
	}
	for _, k := range f.Kernels {
		writeLauncher(&b, k, goName(k.Name))
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: generated Go does not format: %w", f.Path, err)
	}
	return out, nil
}

// writeStruct writes the Go twin of s, with compile-time checks that Go
// gives it the size and alignment computed here (which the emulator's
// build checks against the C compiler's).
func writeStruct(b *bytes.Buffer, s *Struct) {
	name := goName(s.Name)
	fmt.Fprintf(b, "\n// %s is struct %s (%s:%d), passed to kernels by value.\ntype %s struct {\n",
		name, s.Name, s.Path, s.Line, name)
	for _, fd := range s.Fields {
		n := ""
		if fd.Len > 0 {
			n = fmt.Sprintf("[%d]", fd.Len)
		}
		fmt.Fprintf(b, "\t%s %s%s\n", goIdent(fd.Name), n, fd.Type.Go)
	}
	fmt.Fprintf(b, "}\n\n// C lays %s out in %d bytes aligned to %d; these do not compile unless Go does too.\n", s.Name, s.Size, s.Align)
	fmt.Fprintf(b, "var (\n\t_ [0]struct{} = [unsafe.Sizeof(%s{}) - %d]struct{}{}\n", name, s.Size)
	fmt.Fprintf(b, "\t_ [0]struct{} = [unsafe.Alignof(%s{}) - %d]struct{}{}\n)\n", name, s.Align)
}

// writeLauncher writes the launcher of k, named name.
func writeLauncher(b *bytes.Buffer, k *Kernel, name string) {
	var params, args, sig []string
	for i, p := range k.Params {
		id := goIdent(p.Name)
		sig = append(sig, p.CType()+" "+p.Name)
		var typ string
		switch {
		case p.Elem != nil:
			typ = "dptr[" + p.Elem.Go + "]"
			args = append(args, "devPtr("+id+")")
		case p.Scalar != nil:
			typ = p.Scalar.Go
			args = append(args, id)
		default:
			typ = "*" + goName(p.Struct.Name)
			args = append(args, "structArg("+id+")")
		}
		// Consecutive parameters of one type share it, as Go writes them.
		if i+1 < len(k.Params) && sameGoType(p, k.Params[i+1]) {
			params = append(params, id)
		} else {
			params = append(params, id+" "+typ)
		}
	}
	fmt.Fprintf(b, "\n// %s is a launch of %s (%s:%d):\n//\n", name, k.Name, k.Path, k.Line)
	b.WriteString(wrap("//\t"+k.Name+"(", sig, ")", "//\t\t"))
	fmt.Fprintf(b, "func %s(", name)
	if line := strings.Join(params, ", "); len(name)+len(line) < 90 {
		fmt.Fprintf(b, "%s) kernelCall {\n", line)
	} else {
		b.WriteString("\n" + wrap("\t", params, ",", "\t") + ") kernelCall {\n")
	}
	ret := fmt.Sprintf("\treturn kernelCall{kernel: %q, args: []any{", k.Name)
	if line := strings.Join(args, ", "); len(ret)+len(line) < 100 {
		fmt.Fprintf(b, "%s%s}}\n}\n", ret, line)
	} else {
		fmt.Fprintf(b, "%s\n%s}}\n}\n", ret, wrap("\t\t", args, ",", "\t\t"))
	}
}

// sameGoType reports whether two parameters have the same Go type.
func sameGoType(p, q Param) bool {
	return p.Elem == q.Elem && p.Scalar == q.Scalar && p.Struct == q.Struct
}

// wrap joins items with ", " after first and before last, in lines of at
// most about 100 columns, each continuation line beginning with indent.
func wrap(first string, items []string, last, indent string) string {
	var b strings.Builder
	line := first
	for i, it := range items {
		sep := ", "
		if i == len(items)-1 {
			sep = last
		}
		if len(line) > len(indent) && len(line)+len(it)+len(sep) > 100 {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = indent
		}
		line += it + sep
	}
	if len(items) == 0 {
		line += last
	}
	b.WriteString(line + "\n")
	return b.String()
}

// goName turns a C name into a Go one: qm_relu6_f32 becomes qmRelu6F32.
func goName(c string) string {
	parts := strings.Split(c, "_")
	var b strings.Builder
	for i, p := range parts {
		if i > 0 && p != "" {
			p = strings.ToUpper(p[:1]) + p[1:]
		}
		b.WriteString(p)
	}
	return goIdent(b.String())
}

// reserved are the names a launcher's body uses; a parameter named like
// one of them, or like a Go keyword, gets a trailing underscore.
var reserved = map[string]bool{"any": true, "devPtr": true, "dptr": true, "kernelCall": true, "structArg": true,
	"unsafe": true}

func goIdent(s string) string {
	if gotoken.IsKeyword(s) || reserved[s] {
		return s + "_"
	}
	return s
}
