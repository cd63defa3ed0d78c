package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/image/draw"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// maxFolderSize is the largest side length folder images may be resized to.
const maxFolderSize = 4096

// maxFolderPixels caps the width times height of an image in a folder data
// set, so that a hostile file cannot make the decoder exhaust memory.
const maxFolderPixels = 1 << 26

// maxFolderBytes caps the memory of a folder data set's decoded pixels.
const maxFolderBytes = 1 << 36

// maxImageFileBytes caps the size of one image file, which is read whole.
const maxImageFileBytes = 1 << 28

// loadFolder loads split of an image folder data set rooted at dir, in
// one of two layouts:
//
//   - by class: dir/train/<class>/*.png|*.jpg|*.jpeg and dir/test/<class>/*
//     (dir/val when dir/test is absent);
//   - Tiny-ImageNet as distributed: dir/train/<wnid>/images/*.JPEG,
//     dir/val/images/* labelled by dir/val/val_annotations.txt (file name,
//     tab, wnid, ...), and an unlabelled dir/test/, which is ignored: val/ is
//     the test split. It is recognised by val/val_annotations.txt.
//
// The classes are the sorted subdirectory names of train/; each must hold
// an image (in its images/ subdirectory, if it has one), and the test split
// may hold only those classes. Hidden files and directories and files with
// other extensions are ignored. Files are read in name order (Tiny-ImageNet
// validation images in annotation order) and resized to size x size RGB
// with bilinear interpolation; transparent pixels become black.
func loadFolder(dir string, split Split, size int) (*Dataset, error) {
	trainDir := filepath.Join(dir, "train")
	classes, err := subdirs(trainDir)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("folder: %s: empty: no class directories", trainDir)
	}
	var paths []string
	var labels []int32
	switch {
	case split == Train:
		paths, labels, err = byClass(trainDir, classes, true)
	case isTinyImageNet(dir):
		paths, labels, err = tinyImageNetVal(dir, classes)
	default:
		var testRoot string
		if testRoot, err = testDir(dir); err != nil {
			return nil, err
		}
		paths, labels, err = byClass(testRoot, classes, false)
	}
	if err != nil {
		return nil, err
	}
	if n := int64(len(paths)) * int64(size) * int64(size) * 3; n > maxFolderBytes {
		return nil, fmt.Errorf("folder: %s: %d images of %dx%d pixels need %d GiB, more than the %d GiB allowed; pass a smaller --size", dir, len(paths), size, size, n>>30, maxFolderBytes>>30)
	}
	images := make([]uint8, len(paths)*size*size*3)
	if err := decodeImages(paths, size, images); err != nil {
		return nil, err
	}
	return &Dataset{
		Name:       "folder",
		Images:     images,
		Labels:     labels,
		N:          len(paths),
		H:          size,
		W:          size,
		C:          3,
		Classes:    len(classes),
		ClassNames: classes,
	}, nil
}

// byClass lists the images of root/<class>/ (or root/<class>/images/ where
// that exists) for each class, in class and name order. Every class of a
// training split must hold an image; a test split may lack some, but may
// not hold classes that are not in classes.
func byClass(root string, classes []string, train bool) ([]string, []int32, error) {
	if !train {
		present, err := subdirs(root)
		if err != nil {
			return nil, nil, fmt.Errorf("folder: %w", err)
		}
		for _, c := range present {
			if _, found := slices.BinarySearch(classes, c); !found {
				return nil, nil, fmt.Errorf("folder: %s: class %q is not in %s", filepath.Join(root, c), c, filepath.Join(filepath.Dir(root), "train"))
			}
		}
	}
	var (
		paths  []string
		labels []int32
	)
	for label, c := range classes {
		classDir := filepath.Join(root, c)
		if fi, err := os.Stat(filepath.Join(classDir, "images")); err == nil && fi.IsDir() {
			classDir = filepath.Join(classDir, "images")
		}
		files, err := imageFiles(classDir)
		if errors.Is(err, fs.ErrNotExist) && !train {
			continue // a test split may lack a class
		}
		if err != nil {
			return nil, nil, fmt.Errorf("folder: %w", err)
		}
		if len(files) == 0 && train {
			return nil, nil, fmt.Errorf("folder: %s: empty: no .png, .jpg or .jpeg files", classDir)
		}
		paths = append(paths, files...)
		for range files {
			labels = append(labels, int32(label))
		}
	}
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("folder: %s: empty: no .png, .jpg or .jpeg files", root)
	}
	return paths, labels, nil
}

// tinyAnnotations is where Tiny-ImageNet labels its validation images.
const tinyAnnotations = "val/val_annotations.txt"

// maxAnnotationBytes caps the size of val_annotations.txt (the real one is
// about 2 MB).
const maxAnnotationBytes = 1 << 28

// isTinyImageNet reports whether dir is laid out as the Tiny-ImageNet
// archive.
func isTinyImageNet(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, tinyAnnotations))
	return err == nil && fi.Mode().IsRegular()
}

// tinyImageNetVal lists Tiny-ImageNet's validation images and their labels
// from val/val_annotations.txt.
func tinyImageNetVal(dir string, classes []string) ([]string, []int32, error) {
	path := filepath.Join(dir, tinyAnnotations)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("folder: %w", err)
	}
	if fi.Size() > maxAnnotationBytes {
		return nil, nil, fmt.Errorf("folder: %s: %d bytes, more than the %d allowed", path, fi.Size(), maxAnnotationBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("folder: %w", err)
	}
	files, labels, err := parseAnnotations(raw, classes)
	if err != nil {
		return nil, nil, fmt.Errorf("folder: %s: %w", path, err)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, "val", "images", f)
	}
	return paths, labels, nil
}

// parseAnnotations reads Tiny-ImageNet's val_annotations.txt: one line per
// image, "FILE<TAB>WNID" followed by the bounding box, FILE a name in
// val/images/ and WNID one of classes (sorted). Blank lines are skipped.
func parseAnnotations(raw []byte, classes []string) ([]string, []int32, error) {
	var (
		files  []string
		labels []int32
	)
	seen := map[string]int{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 || fields[0] == "" || fields[1] == "" {
			return nil, nil, fmt.Errorf("line %d: want FILE<tab>WNID<tab>box, got %s", i+1, clip.Quote(line))
		}
		file, wnid := fields[0], fields[1]
		if file != filepath.Base(file) || strings.HasPrefix(file, ".") {
			return nil, nil, fmt.Errorf("line %d: %s is not a file name in val/images", i+1, clip.Quote(file))
		}
		label, found := slices.BinarySearch(classes, wnid)
		if !found {
			return nil, nil, fmt.Errorf("line %d: class %s is not a class of train/", i+1, clip.Quote(wnid))
		}
		if prev, dup := seen[file]; dup {
			return nil, nil, fmt.Errorf("line %d: %s is already labelled on line %d", i+1, clip.Quote(file), prev)
		}
		seen[file] = i + 1
		files = append(files, file)
		labels = append(labels, int32(label))
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("empty: no labelled validation images")
	}
	return files, labels, nil
}

// testDir returns dir/test, or dir/val if there is no dir/test.
func testDir(dir string) (string, error) {
	for _, d := range []string{"test", "val"} {
		p := filepath.Join(dir, d)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("folder: %s: missing test split: no test/ or val/ directory", dir)
}

// subdirs returns the sorted names of the visible subdirectories of dir,
// following symbolic links.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil // os.ReadDir sorts by name
}

// imageFiles returns the paths of the visible PNG and JPEG files in dir,
// sorted by name.
func imageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".png", ".jpg", ".jpeg":
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	return paths, nil
}

// decodeImages decodes the images at paths into out, size x size x 3 bytes
// each, in order, using one goroutine per CPU. It stops at the first
// failure and reports it.
func decodeImages(paths []string, size int, out []uint8) error {
	n := size * size * 3
	errs := make([]error, len(paths))
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range min(runtime.NumCPU(), len(paths)) {
		wg.Go(func() {
			canvas := image.NewRGBA(image.Rect(0, 0, size, size))
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(paths) {
					return
				}
				if err := decodeImage(paths[i], canvas, out[i*n:(i+1)*n]); err != nil {
					errs[i] = err
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// maxPixelsPerByte bounds the pixels an image file may declare per byte it
// holds: DEFLATE expands at most 1032 times and a 1-bit PNG holds 8 pixels
// a byte; a JPEG needs at least a bit for each 8×8 block. A header alone
// cannot make the decoder allocate a large image.
const maxPixelsPerByte = 8 * 1032

// decodeImage decodes the PNG or JPEG file path, resizes it onto canvas and
// stores canvas's RGB bytes in dst.
func decodeImage(path string, canvas *image.RGBA, dst []uint8) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	if fi.Size() > maxImageFileBytes {
		return fmt.Errorf("%s: %d bytes, more than the %d allowed for an image file", path, fi.Size(), maxImageFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	if err := decodeImageBytes(b, canvas, dst); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// decodeImageBytes decodes a PNG or JPEG image, resizes it onto canvas and
// stores canvas's RGB bytes in dst.
func decodeImageBytes(b []byte, canvas *image.RGBA, dst []uint8) error {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxFolderPixels/cfg.Height {
		return fmt.Errorf("wrong shape: %dx%d image (at most %d pixels)", cfg.Width, cfg.Height, maxFolderPixels)
	}
	if px := cfg.Width * cfg.Height; px/maxPixelsPerByte > len(b) {
		return fmt.Errorf("wrong shape: a %d-byte file cannot hold a %dx%d image", len(b), cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return err
	}
	r := img.Bounds()
	if r.Dx() == canvas.Rect.Dx() && r.Dy() == canvas.Rect.Dy() {
		draw.Draw(canvas, canvas.Rect, img, r.Min, draw.Src)
	} else {
		draw.BiLinear.Scale(canvas, canvas.Rect, img, r, draw.Src, nil)
	}
	for p := range len(dst) / 3 {
		copy(dst[3*p:3*p+3], canvas.Pix[4*p:4*p+3])
	}
	return nil
}
