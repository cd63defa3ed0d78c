package data

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"
	"testing"
)

// tinyWnids are the classes of the generated Tiny-ImageNet archive, not in
// sorted order (as in the real wnids.txt).
var tinyWnids = []string{"n09256479", "n01443537", "n02124075"}

// tinyColour is the colour of the generated images of class index k of
// tinyWnids; the unlabelled test images are black.
func tinyColour(k int) color.RGBA {
	return []color.RGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}}[k]
}

// tinyImageNet returns a small archive in the layout of
// tiny-imagenet-200.zip: train/<wnid>/images/<wnid>_<i>.JPEG with
// <wnid>_boxes.txt, val/images/val_<i>.JPEG with val/val_annotations.txt,
// unlabelled test/images/test_<i>.JPEG, wnids.txt and words.txt.
func tinyImageNet() map[string][]byte {
	files := map[string][]byte{}
	var wnids, words, annotations strings.Builder
	for k, wnid := range tinyWnids {
		fmt.Fprintf(&wnids, "%s\n", wnid)
		fmt.Fprintf(&words, "%s\tclass number %d, another name\n", wnid, k)
		var boxes strings.Builder
		for i := range 2 + k {
			name := fmt.Sprintf("%s_%d.JPEG", wnid, i)
			files["train/"+wnid+"/images/"+name] = solidJPEG(64, 64, tinyColour(k))
			fmt.Fprintf(&boxes, "%s\t0\t0\t63\t63\n", name)
		}
		files["train/"+wnid+"/"+wnid+"_boxes.txt"] = []byte(boxes.String())
	}
	// Validation images in an order unrelated to their classes.
	for i, k := range []int{2, 0, 1, 2} {
		fmt.Fprintf(&annotations, "val_%d.JPEG\t%s\t%d\t%d\t50\t60\r\n", i, tinyWnids[k], i, i+1)
		files[fmt.Sprintf("val/images/val_%d.JPEG", i)] = solidJPEG(64, 64, tinyColour(k))
	}
	for i := range 3 {
		files[fmt.Sprintf("test/images/test_%d.JPEG", i)] = solidJPEG(64, 64, color.RGBA{0, 0, 0, 255})
	}
	files["wnids.txt"] = []byte(wnids.String())
	files["words.txt"] = []byte(words.String())
	files["val/val_annotations.txt"] = []byte(annotations.String())
	return files
}

// TestLoadTinyImageNet reads the archive as distributed: train/ by class,
// val/ as the test split labelled by val_annotations.txt, test/ ignored.
func TestLoadTinyImageNet(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "tiny-imagenet-200")
	writeFiles(t, dir, tinyImageNet())
	sorted := []string{"n01443537", "n02124075", "n09256479"} // class k of tinyWnids is label sortedIndex
	label := map[int]int32{0: 2, 1: 0, 2: 1}
	check := func(ds *Dataset, wantLabels []int32, wantColours []int) {
		t.Helper()
		checkDataset(t, ds)
		if ds.Classes != 3 || strings.Join(ds.ClassNames, ",") != strings.Join(sorted, ",") {
			t.Fatalf("classes %d %v, want %v", ds.Classes, ds.ClassNames, sorted)
		}
		if ds.H != 64 || ds.W != 64 || ds.C != 3 {
			t.Fatalf("images %dx%dx%d, want 64x64x3", ds.H, ds.W, ds.C)
		}
		if fmt.Sprint(ds.Labels) != fmt.Sprint(wantLabels) {
			t.Fatalf("labels %v, want %v", ds.Labels, wantLabels)
		}
		for i, k := range wantColours {
			if !closeTo(ds.Image(i)[:3], tinyColour(k), 3) || !closeTo(ds.Image(i)[len(ds.Image(i))-3:], tinyColour(k), 3) {
				t.Fatalf("image %d: pixels %v, want the colour of class %s", i, ds.Image(i)[:3], tinyWnids[k])
			}
		}
	}
	// The parent directory is searched for tiny-imagenet-200/.
	tr, err := Load("folder", root, Train, 64)
	if err != nil {
		t.Fatal(err)
	}
	// Label order: n01443537 (class 1, 3 images), n02124075 (class 2, 4),
	// n09256479 (class 0, 2).
	check(tr, []int32{0, 0, 0, 1, 1, 1, 1, 2, 2}, []int{1, 1, 1, 2, 2, 2, 2, 0, 0})
	te, err := Load("folder", dir, Test, 64)
	if err != nil {
		t.Fatal(err)
	}
	check(te, []int32{label[2], label[0], label[1], label[2]}, []int{2, 0, 1, 2})
	if n, err := Classes("folder", dir); err != nil || n != 3 {
		t.Errorf("Classes: %d, %v; want 3", n, err)
	}
}

func TestLoadTinyImageNetErrors(t *testing.T) {
	tests := []struct {
		name, annotations, want string
		drop                    string
	}{
		{"unknown class", "val_0.JPEG\tn00000000\t0\t0\t1\t1\n", `line 1: class "n00000000" is not a class of train/`, ""},
		{"no class column", "val_0.JPEG\n", "line 1: want FILE<tab>WNID<tab>box", ""},
		{"path outside val/images", "val_0.JPEG\tn01443537\n../../train/x.JPEG\tn01443537\n", `line 2: "../../train/x.JPEG" is not a file name in val/images`, ""},
		{"labelled twice", "val_0.JPEG\tn01443537\nval_0.JPEG\tn02124075\n", "line 2: \"val_0.JPEG\" is already labelled on line 1", ""},
		{"empty", "\n", "empty: no labelled validation images", ""},
		{"missing image", "val_0.JPEG\tn01443537\nval_9.JPEG\tn01443537\n", "val_9.JPEG: no such file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := tinyImageNet()
			files["val/val_annotations.txt"] = []byte(tt.annotations)
			writeFiles(t, dir, files)
			_, err := Load("folder", dir, Test, 16)
			wantError(t, err, tt.want)
		})
	}
}
