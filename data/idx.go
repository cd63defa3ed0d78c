package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX magic numbers: two zero bytes, the element type (0x08, unsigned
// byte) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// maxIDXPixels caps the pixel bytes an IDX images file may declare (4 GiB).
// Whatever the header says, the parser allocates no more than its input
// can hold (plain) or inflate to (gzip).
const maxIDXPixels = 1 << 32

// idxClasses is the number of classes of MNIST and Fashion-MNIST.
const idxClasses = 10

// fashionMNISTNames are the Fashion-MNIST class names, by label.
var fashionMNISTNames = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// ParseIDX parses an IDX images file (magic 0x00000803, dimensions N, rows,
// cols) and the matching labels file (magic 0x00000801, dimension N) as
// used by MNIST and Fashion-MNIST. Either may be gzip-compressed, which is
// recognised by its magic bytes. Both must hold the same number of items,
// at least one, and every label must be below 10. The result has C = 1, ten
// classes named "0" to "9", and an empty Name.
func ParseIDX(images, labels []byte) (*Dataset, error) {
	pix, n, h, w, err := parseIDXImages(images)
	if err != nil {
		return nil, fmt.Errorf("idx images: %w", err)
	}
	lbl, err := parseIDXLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("idx labels: %w", err)
	}
	if len(lbl) != n {
		return nil, fmt.Errorf("idx: %d images but %d labels", n, len(lbl))
	}
	return newIDXDataset(pix, lbl, n, h, w), nil
}

func newIDXDataset(pix []uint8, labels []int32, n, h, w int) *Dataset {
	return &Dataset{
		Images:     pix,
		Labels:     labels,
		N:          n,
		H:          h,
		W:          w,
		C:          1,
		Classes:    idxClasses,
		ClassNames: digitNames(idxClasses),
	}
}

// openIDX returns a reader for the IDX file b, decompressing it if it is
// gzip data, and the most bytes the reader can yield.
func openIDX(b []byte) (io.Reader, int, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, 0, readError("gzip header", err)
		}
		return z, maxInflateRatio * len(b), nil
	}
	return bytes.NewReader(b), len(b), nil
}

// readIDXHeader reads an IDX header whose magic must be want and returns
// its dimensions, each of which must be positive.
func readIDXHeader(r io.Reader, want uint32) ([]int, error) {
	var m [4]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return nil, readError("header", err)
	}
	magic := binary.BigEndian.Uint32(m[:])
	if magic>>8 != want>>8 {
		return nil, fmt.Errorf("bad magic 0x%08x (want 0x%08x)", magic, want)
	}
	if magic != want {
		return nil, fmt.Errorf("wrong shape: %d dimensions, want %d", magic&0xff, want&0xff)
	}
	raw := make([]byte, 4*(want&0xff))
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, readError("header", err)
	}
	dims := make([]int, len(raw)/4)
	for i := range dims {
		d := binary.BigEndian.Uint32(raw[4*i:])
		if d == 0 {
			return nil, fmt.Errorf("wrong shape: dimension %d is 0", i)
		}
		dims[i] = int(d)
	}
	return dims, nil
}

// parseIDXImages parses an IDX images file, possibly gzip-compressed.
func parseIDXImages(b []byte) (pix []uint8, n, h, w int, err error) {
	r, limit, err := openIDX(b)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	dims, err := readIDXHeader(r, idxImagesMagic)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	n, h, w = dims[0], dims[1], dims[2]
	// Each dimension is below 2^32, so neither product overflows.
	hw := uint64(h) * uint64(w)
	size := uint64(n) * hw
	if hw > maxIDXPixels || size > maxIDXPixels {
		return nil, 0, 0, 0, fmt.Errorf("wrong shape: %dx%dx%d images exceed %d bytes", n, h, w, uint64(maxIDXPixels))
	}
	pix, err = readFull(r, int(size), limit)
	if err != nil {
		return nil, 0, 0, 0, readError(fmt.Sprintf("pixel data (want %d bytes for %dx%dx%d)", size, n, h, w), err)
	}
	if err := expectEOF(r, "pixel data"); err != nil {
		return nil, 0, 0, 0, err
	}
	return pix, n, h, w, nil
}

// parseIDXLabels parses an IDX labels file, possibly gzip-compressed.
func parseIDXLabels(b []byte) ([]int32, error) {
	r, limit, err := openIDX(b)
	if err != nil {
		return nil, err
	}
	dims, err := readIDXHeader(r, idxLabelsMagic)
	if err != nil {
		return nil, err
	}
	raw, err := readFull(r, dims[0], limit)
	if err != nil {
		return nil, readError(fmt.Sprintf("labels (want %d)", dims[0]), err)
	}
	if err := expectEOF(r, "labels"); err != nil {
		return nil, err
	}
	labels := make([]int32, len(raw))
	for i, l := range raw {
		if l >= idxClasses {
			return nil, fmt.Errorf("label %d at index %d out of range [0, %d)", l, i, idxClasses)
		}
		labels[i] = int32(l)
	}
	return labels, nil
}

// loadIDX loads split of the IDX data set name ("mnist" or
// "fashion-mnist") from dir.
func loadIDX(name, dir string, split Split) (*Dataset, error) {
	prefix := "train"
	if split == Test {
		prefix = "t10k"
	}
	imgPath, err := findIDXFile(name, dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := findIDXFile(name, dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(imgPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pix, n, h, w, err := parseIDXImages(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imgPath, err)
	}
	if b, err = os.ReadFile(lblPath); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	labels, err := parseIDXLabels(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lblPath, err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("%s: %d labels but %s has %d images", lblPath, len(labels), imgPath, n)
	}
	ds := newIDXDataset(pix, labels, n, h, w)
	ds.Name = name
	if name == "fashion-mnist" {
		ds.ClassNames = append([]string(nil), fashionMNISTNames...)
	}
	return ds, nil
}

// findIDXFile returns the path of dir/base or, failing that, of
// dir/base.gz.
func findIDXFile(name, dir, base string) (string, error) {
	for _, f := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, f)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", name, err)
		}
	}
	return "", fmt.Errorf("%s: %s has neither %s nor %s.gz", name, dir, base, base)
}
