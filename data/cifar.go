package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR images are 32x32 RGB.
const (
	cifarSide   = 32
	cifarPlane  = cifarSide * cifarSide
	cifarPixels = 3 * cifarPlane
)

// cifar10Names are the CIFAR-10 class names, used when batches.meta.txt is
// absent.
var cifar10Names = []string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

// cifar100Names are the CIFAR-100 fine class names, used when
// fine_label_names.txt is absent.
var cifar100Names = []string{
	"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
	"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
	"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
	"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
	"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
	"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
	"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
	"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
	"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
	"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
}

// ParseCIFAR parses one CIFAR binary batch file. Each CIFAR-10 record is a
// label byte followed by 3072 pixel bytes: the 32x32 red plane, then green,
// then blue, each row-major. A CIFAR-100 record (fine set) starts with a
// coarse label byte (below 20) and a fine label byte (below 100) instead;
// the fine labels are returned. The images come back in HWC order, 3072
// bytes each. The file must hold at least one whole record and nothing
// else.
func ParseCIFAR(records []byte, fine bool) (images []uint8, labels []int32, err error) {
	head, classes := 1, len(cifar10Names)
	if fine {
		head, classes = 2, len(cifar100Names)
	}
	size := head + cifarPixels
	if len(records) == 0 {
		return nil, nil, errors.New("empty: no records")
	}
	if len(records)%size != 0 {
		return nil, nil, fmt.Errorf("truncated: %d bytes is not a multiple of the %d-byte record", len(records), size)
	}
	n := len(records) / size
	images = make([]uint8, n*cifarPixels)
	labels = make([]int32, n)
	for i := range n {
		rec := records[i*size : (i+1)*size]
		if fine && rec[0] >= 20 {
			return nil, nil, fmt.Errorf("record %d: coarse label %d out of range [0, 20)", i, rec[0])
		}
		l := rec[head-1]
		if int(l) >= classes {
			return nil, nil, fmt.Errorf("record %d: label %d out of range [0, %d)", i, l, classes)
		}
		labels[i] = int32(l)
		planarToHWC(images[i*cifarPixels:(i+1)*cifarPixels], rec[head:])
	}
	return images, labels, nil
}

// planarToHWC converts a 32x32 image from three row-major colour planes
// (src) to interleaved HWC order (dst).
func planarToHWC(dst, src []uint8) {
	r, g, b := src[:cifarPlane], src[cifarPlane:2*cifarPlane], src[2*cifarPlane:3*cifarPlane]
	dst = dst[:3*cifarPlane]
	for p := range cifarPlane {
		dst[3*p] = r[p]
		dst[3*p+1] = g[p]
		dst[3*p+2] = b[p]
	}
}

// loadCIFAR10 loads split of CIFAR-10 from dir (cifar-10-batches-bin). The
// five training batches must hold equally many records.
func loadCIFAR10(dir string, split Split) (*Dataset, error) {
	files := []string{"test_batch.bin"}
	if split == Train {
		files = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	}
	names, err := readClassNames(filepath.Join(dir, "batches.meta.txt"), cifar10Names)
	if err != nil {
		return nil, fmt.Errorf("cifar10: %w", err)
	}
	return loadCIFARFiles("cifar10", dir, files, false, names)
}

// loadCIFAR100 loads split of CIFAR-100 (fine labels) from dir
// (cifar-100-binary).
func loadCIFAR100(dir string, split Split) (*Dataset, error) {
	file := "test.bin"
	if split == Train {
		file = "train.bin"
	}
	names, err := readClassNames(filepath.Join(dir, "fine_label_names.txt"), cifar100Names)
	if err != nil {
		return nil, fmt.Errorf("cifar100: %w", err)
	}
	return loadCIFARFiles("cifar100", dir, []string{file}, true, names)
}

// loadCIFARFiles reads and concatenates the named batch files of dir.
func loadCIFARFiles(name, dir string, files []string, fine bool, classNames []string) (*Dataset, error) {
	var (
		images []uint8
		labels []int32
		first  int // records in the first file
	)
	for i, f := range files {
		path := filepath.Join(dir, f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		im, lb, err := ParseCIFAR(b, fine)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if i == 0 {
			first = len(lb)
			images = make([]uint8, 0, len(files)*len(im))
			labels = make([]int32, 0, len(files)*len(lb))
		} else if len(lb) != first {
			return nil, fmt.Errorf("%s: wrong shape: %d records but %s has %d", path, len(lb), files[0], first)
		}
		images = append(images, im...)
		labels = append(labels, lb...)
	}
	return &Dataset{
		Name:       name,
		Images:     images,
		Labels:     labels,
		N:          len(labels),
		H:          cifarSide,
		W:          cifarSide,
		C:          3,
		Classes:    len(classNames),
		ClassNames: classNames,
	}, nil
}

// readClassNames reads class names, one per line, from path; blank lines
// are skipped. If path does not exist it returns a copy of def. A file must
// name exactly len(def) classes.
func readClassNames(path string, def []string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return append([]string(nil), def...), nil
	}
	if err != nil {
		return nil, err
	}
	names, err := parseClassNames(b, len(def))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// parseClassNames reads want class names, one a line (surrounding space
// trimmed, blank lines skipped).
func parseClassNames(b []byte, want int) ([]string, error) {
	var names []string
	for line := range strings.Lines(string(b)) {
		if s := strings.TrimSpace(line); s != "" {
			if len(names) == want {
				return nil, fmt.Errorf("more than %d class names", want)
			}
			names = append(names, s)
		}
	}
	if len(names) != want {
		return nil, fmt.Errorf("%d class names, want %d", len(names), want)
	}
	return names, nil
}
