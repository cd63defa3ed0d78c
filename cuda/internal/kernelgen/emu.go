package kernelgen

import (
	"bytes"
	"fmt"
	"strings"
)

// Emu returns the emulated device's kernel table for the kernels of src,
// a C++ fragment that cuda/emu/gen-kernels.sh appends to the kernels it
// compiles as host code. Each entry is QM_EMU_KERNEL(name, type)
// (cuda/emu/device.h), which does not compile unless the kernel's
// function type is the one parsed here; each struct taken by value is
// asserted to have the size and alignment the Go side copies.
func Emu(dir string, src *Source) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s/*.cu; DO NOT EDIT.\n", Header, dir)
	b.WriteString("// The emulated device's kernel table (see cuda/emu/device.h).\n")
	for _, f := range src.Files {
		for _, s := range f.Structs {
			fmt.Fprintf(&b, "static_assert(sizeof(%s) == %d && alignof(%s) == %d, \"%s:%d: kernelgen lays %s out differently\");\n",
				s.Name, s.Size, s.Name, s.Align, s.Path, s.Line, s.Name)
		}
	}
	b.WriteString("namespace qm_emu {\nconst Kernel kernel_table[] = {\n")
	for _, f := range src.Files {
		for _, k := range f.Kernels {
			types := make([]string, len(k.Params))
			for i, p := range k.Params {
				types[i] = p.CType()
			}
			fmt.Fprintf(&b, "    QM_EMU_KERNEL(%s, void(%s)) // %s:%d\n", k.Name, strings.Join(types, ", "), k.Path, k.Line)
		}
	}
	b.WriteString("};\nconst size_t kernel_count = sizeof kernel_table / sizeof kernel_table[0];\n} // namespace qm_emu\n")
	return b.Bytes()
}
