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
)

// maxFolderSize is the largest side length folder images may be resized to.
const maxFolderSize = 4096

// maxFolderPixels caps the width times height of an image in a folder data
// set, so that a hostile file cannot make the decoder exhaust memory.
const maxFolderPixels = 1 << 26

// loadFolder loads split of an image folder data set rooted at dir:
// dir/train/<class>/*.png|*.jpg|*.jpeg and dir/test/<class>/* (dir/val when
// dir/test is absent). The classes are the sorted subdirectory names of
// train/; each must hold an image, and test/ may hold only those classes.
// Hidden files and directories and files with other extensions are
// ignored. Files are read in name order and resized to size x size RGB
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
	splitDir := trainDir
	if split == Test {
		if splitDir, err = testDir(dir); err != nil {
			return nil, err
		}
		present, err := subdirs(splitDir)
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		for _, c := range present {
			if _, found := slices.BinarySearch(classes, c); !found {
				return nil, fmt.Errorf("folder: %s: class %q is not in %s", filepath.Join(splitDir, c), c, trainDir)
			}
		}
	}

	var (
		paths  []string
		labels []int32
	)
	for label, c := range classes {
		files, err := imageFiles(filepath.Join(splitDir, c))
		if errors.Is(err, fs.ErrNotExist) && split == Test {
			continue // a test split may lack a class
		}
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		if len(files) == 0 && split == Train {
			return nil, fmt.Errorf("folder: %s: empty: no .png, .jpg or .jpeg files", filepath.Join(splitDir, c))
		}
		paths = append(paths, files...)
		for range files {
			labels = append(labels, int32(label))
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("folder: %s: empty: no .png, .jpg or .jpeg files", splitDir)
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

// decodeImage decodes the PNG or JPEG file path, resizes it onto canvas and
// stores canvas's RGB bytes in dst.
func decodeImage(path string, canvas *image.RGBA, dst []uint8) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("folder: %w", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxFolderPixels/cfg.Height {
		return fmt.Errorf("%s: wrong shape: %dx%d image (at most %d pixels)", path, cfg.Width, cfg.Height, maxFolderPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
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
