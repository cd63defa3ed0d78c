package data

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/internal/fuzzcheck"
)

// allocSlack bounds the bytes a parser may allocate per input byte:
// compressed input inflates at most maxInflateRatio times, the inflated
// buffer may be grown to twice its size, and numeric MAT data may widen 8
// times to float64 (an image decodes to at most 4 bytes for each of the
// maxPixelsPerByte pixels a byte may declare, which is the same bound).
// allocBase covers fixed costs such as decompressor state.
const (
	allocSlack = 4 * 8 * maxInflateRatio
	allocBase  = 4 << 20
)

// checkAlloc runs parse and fails if it allocated more than the bound for
// an input of n bytes.
func checkAlloc(t *testing.T, n int, parse func()) {
	t.Helper()
	fuzzcheck.Alloc(t, n, allocBase, allocSlack, parse)
}

// FuzzParseIDX parses any pair of IDX files: no panic, memory bounded by
// the input, one-line errors, and a data set that, written again as IDX,
// parses to the same pixels and labels.
func FuzzParseIDX(f *testing.F) {
	images, labels := idxImages(2, 3, 4), idxLabels(5, 9)
	f.Add(images, labels)
	f.Add(gzipped(images), gzipped(labels))
	f.Add(images[:20], labels)
	f.Add(idxImages(1, 28, 28), gzipped(idxLabels(3)))
	// Headers claiming MNIST's 47 MB of pixels over no pixels at all.
	claim := encodeIDXImages(&Dataset{N: 60000, H: 28, W: 28})
	f.Add(claim, labels)
	f.Add(gzipped(claim), labels)
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		var (
			ds  *Dataset
			err error
		)
		checkAlloc(t, len(images)+len(labels), func() { ds, err = ParseIDX(images, labels) })
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		checkDataset(t, ds)
		if ds.C != 1 || ds.Classes != 10 {
			t.Fatalf("C=%d classes=%d, want 1 and 10", ds.C, ds.Classes)
		}
		again, err := ParseIDX(encodeIDXImages(ds), encodeIDXLabels(ds.Labels))
		if err != nil || !bytes.Equal(again.Images, ds.Images) || !slices.Equal(again.Labels, ds.Labels) || again.H != ds.H || again.W != ds.W {
			t.Fatalf("written again: %v, or other images or labels", err)
		}
	})
}

// encodeIDXImages writes a data set's images as an IDX images file.
func encodeIDXImages(ds *Dataset) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, d := range []int{ds.N, ds.H, ds.W} {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, ds.Images...)
}

// encodeIDXLabels writes labels as an IDX labels file.
func encodeIDXLabels(labels []int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxLabelsMagic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(labels)))
	for _, l := range labels {
		b = append(b, byte(l))
	}
	return b
}

// FuzzParseCIFAR parses any CIFAR-10 or CIFAR-100 batch: no panic, memory
// bounded by the input, one-line errors, labels in range, and records that
// written again are the input (CIFAR-10) or parse to the same images and
// labels (CIFAR-100, whose coarse labels are not kept).
func FuzzParseCIFAR(f *testing.F) {
	f.Add(cifarRecords(false, 1, 2), false)
	f.Add(cifarRecords(true, 42), true)
	f.Add(cifarRecords(false, 3)[:100], false)
	f.Fuzz(func(t *testing.T, records []byte, fine bool) {
		var (
			images []uint8
			labels []int32
			err    error
		)
		checkAlloc(t, len(records), func() { images, labels, err = ParseCIFAR(records, fine) })
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		classes := 10
		if fine {
			classes = 100
		}
		if len(labels) == 0 || len(images) != len(labels)*3072 {
			t.Fatalf("%d labels and %d pixel bytes", len(labels), len(images))
		}
		for i, l := range labels {
			if l < 0 || int(l) >= classes {
				t.Fatalf("label %d of record %d out of range", l, i)
			}
		}
		again := encodeCIFAR(images, labels, fine)
		if !fine && !bytes.Equal(again, records) {
			t.Fatalf("records written again differ from the input")
		}
		im, lb, err := ParseCIFAR(again, fine)
		if err != nil || !bytes.Equal(im, images) || !slices.Equal(lb, labels) {
			t.Fatalf("written again: %v, or other images or labels", err)
		}
	})
}

// encodeCIFAR writes HWC images and labels as CIFAR records (coarse labels
// 0).
func encodeCIFAR(images []uint8, labels []int32, fine bool) []byte {
	var b []byte
	for i, l := range labels {
		if fine {
			b = append(b, 0)
		}
		b = append(b, byte(l))
		img := images[i*cifarPixels : (i+1)*cifarPixels]
		for c := range 3 {
			for p := range cifarPlane {
				b = append(b, img[3*p+c])
			}
		}
	}
	return b
}

// FuzzParseMAT parses any bytes as an uncompressed level-5 MAT file: no
// panic, memory bounded by the input, one-line errors, well-formed
// variables that, written again, parse to the same values.
func FuzzParseMAT(f *testing.F) {
	small := matVar{name: "a", class: mxDOUBLE, dims: []int{2, 2}, typ: miINT16, data: make([]byte, 8)}
	f.Add(matFile(false, small))
	f.Add(matFile(false, svhnVars(false, 1)...))
	f.Add(matFile(false, matVar{name: "single", class: 7, dims: []int{1, 3}, typ: miSINGLE, data: make([]byte, 12)},
		matVar{name: "u64", class: mxUINT64, dims: []int{1, 1}, typ: miUINT64, data: make([]byte, 8)}))
	f.Add(matHeader())
	f.Fuzz(func(t *testing.T, b []byte) { checkMAT(t, b) })
}

// FuzzParseMATCompressed parses any bytes as the zlib stream of one
// compressed MAT variable, with FuzzParseMAT's invariants.
func FuzzParseMATCompressed(f *testing.F) {
	small := matVar{name: "a", class: mxDOUBLE, dims: []int{2, 2}, typ: miINT16, data: make([]byte, 8)}
	for _, v := range append([]matVar{small}, svhnVars(true, 10, 2)...) {
		f.Add(matCompressed(matMatrix(v))[8:])
	}
	f.Add(matCompressed(bytes.Repeat([]byte{0}, 4096))[8:])
	// A matrix declaring 4 GB over a stream of a few bytes.
	f.Add(matCompressed(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, miMATRIX), 1<<32-8))[8:])
	f.Fuzz(func(t *testing.T, z []byte) {
		b := binary.LittleEndian.AppendUint32(matHeader(), miCOMPRESSED)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(z)))
		checkMAT(t, append(b, z...))
	})
}

func checkMAT(t *testing.T, b []byte) {
	var (
		vars map[string]*MatArray
		err  error
	)
	checkAlloc(t, len(b), func() { vars, err = ParseMAT(b) })
	if err != nil {
		fuzzcheck.Message(t, err)
		return
	}
	var again []matVar
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		a := vars[name]
		n := 1
		for _, d := range a.Dims {
			if d < 0 {
				t.Fatalf("%q: negative dimension in %v", name, a.Dims)
			}
			n *= d
		}
		if a.Name != name || len(a.Dims) < 2 || a.Len() != n {
			t.Fatalf("%q: name %q dims %v with %d elements", name, a.Name, a.Dims, a.Len())
		}
		if (a.Class == "uint8") != (a.Float64 == nil) {
			t.Fatalf("%q: class %s with Uint8 %d and Float64 %d elements", name, a.Class, len(a.Uint8), len(a.Float64))
		}
		again = append(again, matVarOf(a))
	}
	reparsed, err := ParseMAT(matFile(false, again...))
	if err != nil {
		t.Fatalf("written again: %v", err)
	}
	for name, a := range vars {
		r := reparsed[name]
		if r == nil || r.Class != a.Class || !slices.Equal(r.Dims, a.Dims) || !bytes.Equal(r.Uint8, a.Uint8) || !sameFloats(r.Float64, a.Float64) {
			t.Fatalf("written again, %q differs", name)
		}
	}
	// Whatever parses must not crash the SVHN conversion either.
	if ds, err := svhnFromMAT(vars); err == nil {
		checkDataset(t, ds)
	}
}

// matVarOf writes a parsed variable back: uint8 arrays as bytes, others as
// doubles.
func matVarOf(a *MatArray) matVar {
	var class byte
	for c, n := range mxClasses {
		if n == a.Class {
			class = c
		}
	}
	if a.Uint8 != nil || a.Class == "uint8" {
		return matVar{name: a.Name, class: class, dims: a.Dims, typ: miUINT8, data: a.Uint8}
	}
	return matVar{name: a.Name, class: class, dims: a.Dims, typ: miDOUBLE, data: float64Bytes(a.Float64...)}
}

// sameFloats compares bit patterns, so NaNs compare equal to themselves.
func sameFloats(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// FuzzSVHN reads any bytes as an SVHN .mat file: no panic, memory bounded
// by the input, one-line errors, and a data set that, written again as X
// and y, reads back the same.
func FuzzSVHN(f *testing.F) {
	f.Add(matFile(false, svhnVars(false, 1, 10)...))
	f.Add(matFile(true, svhnVars(true, 3)...))
	x := svhnVars(false, 1)[0]
	x.dims = []int{32, 32, 3}
	f.Add(matFile(false, x, matVar{name: "y", class: mxDOUBLE, dims: []int{1, 1}, typ: miDOUBLE, data: float64Bytes(10)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ds *Dataset
		var err error
		checkAlloc(t, len(b), func() {
			var vars map[string]*MatArray
			if vars, err = ParseMAT(b); err == nil {
				ds, err = svhnFromMAT(vars)
			}
		})
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		checkDataset(t, ds)
		labels := make([]byte, ds.N)
		for i, l := range ds.Labels {
			labels[i] = byte(l)
			if l == 0 {
				labels[i] = 10
			}
		}
		xv := matVar{name: "X", class: mxUINT8, dims: []int{32, 32, 3, ds.N}, typ: miUINT8, data: nhwcToColumnMajor(ds.Images, ds.N)}
		yv := matVar{name: "y", class: mxDOUBLE, dims: []int{ds.N, 1}, typ: miUINT8, data: labels}
		vars, err := ParseMAT(matFile(false, xv, yv))
		if err == nil {
			var again *Dataset
			if again, err = svhnFromMAT(vars); err == nil && (!bytes.Equal(again.Images, ds.Images) || !slices.Equal(again.Labels, ds.Labels)) {
				t.Fatalf("written again, other images or labels")
			}
		}
		if err != nil {
			t.Fatalf("written again: %v", err)
		}
	})
}

// nhwcToColumnMajor is the inverse of columnMajorToNHWC.
func nhwcToColumnMajor(images []uint8, n int) []uint8 {
	out := make([]uint8, len(images))
	for i := range n {
		for h := range 32 {
			for w := range 32 {
				for c := range 3 {
					out[h+32*(w+32*(c+3*i))] = images[((i*32+h)*32+w)*3+c]
				}
			}
		}
	}
	return out
}

// tinyClasses are the classes FuzzTinyImageNetAnnotations labels with.
var tinyClasses = []string{"n01443537", "n01629819", "n02124075"}

// FuzzTinyImageNetAnnotations reads any bytes as val_annotations.txt: no
// panic, one-line errors, and annotations that, written again, read back
// the same.
func FuzzTinyImageNetAnnotations(f *testing.F) {
	f.Add([]byte("val_0.JPEG\tn01443537\t0\t32\t44\t62\nval_1.JPEG\tn02124075\t52\t55\t57\t59\r\n\n"))
	f.Add([]byte("val_0.JPEG\tn01443537\nval_0.JPEG\tn02124075\n"))
	f.Add([]byte("../x\tn01443537\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var files []string
		var labels []int32
		var err error
		checkAlloc(t, len(raw), func() { files, labels, err = parseAnnotations(raw, tinyClasses) })
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		var again strings.Builder
		for i, file := range files {
			again.WriteString(file + "\t" + tinyClasses[labels[i]] + "\n")
		}
		f2, l2, err := parseAnnotations([]byte(again.String()), tinyClasses)
		if err != nil || !slices.Equal(f2, files) || !slices.Equal(l2, labels) {
			t.Fatalf("written again: %v, or other files or labels", err)
		}
	})
}

// FuzzClassNames reads any bytes as a class-name file (batches.meta.txt,
// fine_label_names.txt): no panic, one-line errors, and names that,
// written again one a line, read back the same.
func FuzzClassNames(f *testing.F) {
	f.Add([]byte(strings.Join(cifar10Names, "\n") + "\n"))
	f.Add([]byte("a\r\n\n b \n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var names []string
		var err error
		checkAlloc(t, len(raw), func() { names, err = parseClassNames(raw, len(cifar10Names)) })
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		again, err := parseClassNames([]byte(strings.Join(names, "\n")), len(cifar10Names))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("written again: %v, %q, want %q", err, again, names)
		}
	})
}

// FuzzDecodeImage decodes any bytes as a folder data set's image: no
// panic, memory bounded by the input (a header cannot declare more pixels
// than its file can hold), one-line errors; the decoded RGB pixels,
// written again as a PNG of the same size, decode to the same pixels.
func FuzzDecodeImage(f *testing.F) {
	f.Add(patternPNG(1, 8))
	f.Add(solidJPEG(8, 8, color.RGBA{R: 200, G: 10, B: 30, A: 255}))
	f.Add(encodePNG(image.NewGray(image.Rect(0, 0, 3, 5))))
	f.Add(encodePNG(image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.Transparent})))
	var progressive bytes.Buffer
	jpeg.Encode(&progressive, image.NewCMYK(image.Rect(0, 0, 9, 7)), nil)
	f.Add(progressive.Bytes())
	f.Add(pngClaiming(8000, 8000))
	const size = 8
	f.Fuzz(func(t *testing.T, b []byte) {
		canvas := image.NewRGBA(image.Rect(0, 0, size, size))
		dst := make([]uint8, size*size*3)
		var err error
		checkAlloc(t, len(b), func() { err = decodeImageBytes(b, canvas, dst) })
		if err != nil {
			fuzzcheck.Message(t, err)
			return
		}
		img := image.NewRGBA(image.Rect(0, 0, size, size))
		for p := range size * size {
			copy(img.Pix[4*p:], dst[3*p:3*p+3])
			img.Pix[4*p+3] = 255
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		again := make([]uint8, len(dst))
		if err := decodeImageBytes(buf.Bytes(), image.NewRGBA(image.Rect(0, 0, size, size)), again); err != nil || !bytes.Equal(again, dst) {
			t.Fatalf("written again: %v, or other pixels", err)
		}
	})
}
