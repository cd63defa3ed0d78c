package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"slices"
	"testing"
)

// folderPixel is the colour at (x, y) of the generated folder image id.
func folderPixel(id, x, y int) color.RGBA {
	return color.RGBA{R: byte(id*40 + x), G: byte(y * 16), B: byte(200 - 10*id + x + y), A: 255}
}

// patternPNG returns a size x size PNG of folderPixel(id, ...).
func patternPNG(id, size int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			img.SetRGBA(x, y, folderPixel(id, x, y))
		}
	}
	return encodePNG(img)
}

func encodePNG(img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// solid returns a w x h image of one colour.
func solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// solidJPEG returns a w x h JPEG of one colour at the best quality.
func solidJPEG(w, h int, c color.RGBA) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, solid(w, h, c), &jpeg.Options{Quality: 100}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// closeTo reports whether the RGB bytes px are within tol of c.
func closeTo(px []uint8, c color.RGBA, tol int) bool {
	for i, v := range []uint8{c.R, c.G, c.B} {
		if d := int(px[i]) - int(v); d < -tol || d > tol {
			return false
		}
	}
	return true
}

func TestLoadFolder(t *testing.T) {
	const size = 8
	dir := t.TempDir()
	gray := image.NewGray(image.Rect(0, 0, size, size))
	for i := range gray.Pix {
		gray.Pix[i] = byte(3 * i)
	}
	clear := image.NewNRGBA(image.Rect(0, 0, size, size)) // transparent white
	for i := 0; i < len(clear.Pix); i += 4 {
		clear.Pix[i], clear.Pix[i+1], clear.Pix[i+2] = 255, 255, 255
	}
	red, blue := color.RGBA{R: 220, G: 30, B: 40, A: 255}, color.RGBA{R: 10, G: 60, B: 230, A: 255}
	writeFiles(t, dir, map[string][]byte{
		// Classes are sorted: bird, cat, dog; files by name within each.
		"train/dog/b.png":       patternPNG(2, size),
		"train/dog/a.png":       patternPNG(1, size),
		"train/cat/x.PNG":       patternPNG(0, size),
		"train/cat/notes.txt":   []byte("ignored"),
		"train/cat/.hidden.png": []byte("ignored"),
		"train/bird/g.png":      encodePNG(gray),
		"train/bird/h.png":      encodePNG(clear),
		"train/bird/big.jpg":    solidJPEG(32, 24, red), // resized
		"train/bird/z.jpeg":     solidJPEG(size, size, blue),
		"train/.git/x.png":      []byte("ignored"),
		"val/dog/c.png":         patternPNG(3, size),
		"val/bird/d.png":        patternPNG(4, size),
	})

	ds, err := Load("folder", dir, Train, size)
	if err != nil {
		t.Fatal(err)
	}
	checkDataset(t, ds)
	if ds.Name != "folder" || ds.N != 7 || ds.H != size || ds.W != size || ds.C != 3 {
		t.Fatalf("%s: N=%d H=%d W=%d C=%d, want folder 7x8x8x3", ds.Name, ds.N, ds.H, ds.W, ds.C)
	}
	if want := []string{"bird", "cat", "dog"}; !slices.Equal(ds.ClassNames, want) {
		t.Errorf("class names %v, want %v", ds.ClassNames, want)
	}
	if want := []int32{0, 0, 0, 0, 1, 2, 2}; !slices.Equal(ds.Labels, want) {
		t.Errorf("labels %v, want %v", ds.Labels, want)
	}
	// Images: big.jpg, g.png, h.png, z.jpeg, x.PNG, a.png, b.png.
	for x := range size {
		for y := range size {
			px := func(i int) []uint8 { return ds.Image(i)[(y*size+x)*3:] }
			if !closeTo(px(0), red, 4) {
				t.Fatalf("resized JPEG (%d,%d) = %v, want about %v", x, y, px(0)[:3], red)
			}
			g := gray.Pix[y*size+x]
			if !slices.Equal(px(1)[:3], []uint8{g, g, g}) {
				t.Fatalf("gray PNG (%d,%d) = %v, want %d", x, y, px(1)[:3], g)
			}
			if !slices.Equal(px(2)[:3], []uint8{0, 0, 0}) {
				t.Fatalf("transparent PNG (%d,%d) = %v, want black", x, y, px(2)[:3])
			}
			if !closeTo(px(3), blue, 4) {
				t.Fatalf("JPEG (%d,%d) = %v, want about %v", x, y, px(3)[:3], blue)
			}
			for i, id := range map[int]int{4: 0, 5: 1, 6: 2} {
				if c := folderPixel(id, x, y); !slices.Equal(px(i)[:3], []uint8{c.R, c.G, c.B}) {
					t.Fatalf("image %d (%d,%d) = %v, want %v", i, x, y, px(i)[:3], c)
				}
			}
		}
	}

	// The test split falls back to val/, which lacks the cat class.
	ds, err = Load("folder", dir, Test, size)
	if err != nil {
		t.Fatal(err)
	}
	checkDataset(t, ds)
	if !slices.Equal(ds.Labels, []int32{0, 2}) || ds.Classes != 3 {
		t.Errorf("test labels %v classes %d, want [0 2] and 3", ds.Labels, ds.Classes)
	}
	if c := folderPixel(4, 5, 6); !slices.Equal(ds.Image(0)[(6*size+5)*3:][:3], []uint8{c.R, c.G, c.B}) {
		t.Errorf("test image 0 pixel (5,6) = %v, want %v", ds.Image(0)[(6*size+5)*3:][:3], c)
	}

	// The default size is 32; a uniform image stays uniform when resized.
	ds, err = Load("folder", dir, Train, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ds.H != 32 || ds.W != 32 || !closeTo(ds.Image(3)[3*(32*32-1):], blue, 4) {
		t.Errorf("default size: %dx%d, last pixel of z.jpeg %v", ds.H, ds.W, ds.Image(3)[3*(32*32-1):])
	}
}

func TestLoadFolderErrors(t *testing.T) {
	img := patternPNG(0, 4)
	tests := []struct {
		name  string
		files map[string][]byte
		split Split
		size  int
		want  string
	}{
		{"empty folder", map[string][]byte{"README": nil}, Train, 4, "folder: data set not found in"},
		{"no classes", map[string][]byte{"train/README": nil}, Train, 4, "train: empty: no class directories"},
		{"empty class", map[string][]byte{"train/a/x.png": img, "train/b/x.txt": nil}, Train, 4, "train/b: empty: no .png, .jpg or .jpeg files"},
		{"missing test split", map[string][]byte{"train/a/x.png": img}, Test, 4, "missing test split: no test/ or val/ directory"},
		{"empty test split", map[string][]byte{"train/a/x.png": img, "test/a/x.txt": nil}, Test, 4, "test: empty"},
		{"unknown test class", map[string][]byte{"train/a/x.png": img, "test/b/x.png": img}, Test, 4, `test/b: class "b" is not in`},
		{"corrupt image", map[string][]byte{"train/a/x.png": img, "train/a/y.png": img[:40]}, Train, 4, "train/a/y.png: "},
		{"not an image", map[string][]byte{"train/a/x.jpg": []byte("hello")}, Train, 4, "train/a/x.jpg: image: unknown format"},
		{"bad size", map[string][]byte{"train/a/x.png": img}, Train, -1, "folder: image size -1 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			_, err := Load("folder", dir, tt.split, tt.size)
			wantError(t, err, filepath.FromSlash(tt.want))
		})
	}
}

// pngClaiming returns a 1x1 grey PNG whose header says it is w x h.
func pngClaiming(w, h uint32) []byte {
	b := encodePNG(image.NewGray(image.Rect(0, 0, 1, 1)))
	// The IHDR chunk: length at 8, type at 12, width and height at 16 and
	// 20, and its CRC over type and data after the 13 data bytes.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestDecodeImageBoundsPixels: a 70-byte PNG whose header claims 8000 x
// 8000 pixels is refused before the decoder allocates them; an image its
// file can hold is decoded.
func TestDecodeImageBoundsPixels(t *testing.T) {
	canvas := image.NewRGBA(image.Rect(0, 0, 4, 4))
	dst := make([]uint8, 4*4*3)
	bomb := pngClaiming(8000, 8000)
	err := decodeImageBytes(bomb, canvas, dst)
	wantError(t, err, fmt.Sprintf("a %d-byte file cannot hold a 8000x8000 image", len(bomb)))
	if err := decodeImageBytes(patternPNG(1, 64), canvas, dst); err != nil {
		t.Fatal(err)
	}
}
