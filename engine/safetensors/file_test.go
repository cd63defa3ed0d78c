package safetensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	want := testFile()
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(want, got); d != "" {
		t.Error(d)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Errorf("directory holds %q, want only the file", names)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("new file has permissions %v, want 0644", perm)
	}

	// Replacing the file keeps its permissions and its new contents win.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	want = &File{Metadata: map[string]string{"v": "2"}}
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	if got, err = ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(want, got); d != "" {
		t.Error(d)
	}
	if info, err = os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("replaced file has permissions %v, want 0600", perm)
	}
}

func TestWriteFileRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	f := &File{Tensors: []Tensor{{Name: "x", DType: "U8", Data: []byte{1}}}}
	if err := WriteFile("x.safetensors", f); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile("x.safetensors"); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFileFailureLeavesOldFile(t *testing.T) {
	valid := &File{Tensors: []Tensor{{Name: "x", DType: "U8", Shape: []int{1}, Data: []byte{1}}}}
	invalid := &File{Tensors: []Tensor{{Name: "x", DType: "F32", Shape: []int{2}, Data: []byte{1}}}}
	tests := []struct {
		name string
		// setup creates what path names before the write.
		setup   func(t *testing.T, path string)
		file    *File
		wantErr string
	}{
		{
			name:    "invalid file",
			setup:   func(t *testing.T, path string) { writeOld(t, path) },
			file:    invalid,
			wantErr: `tensor "x": data is 1 bytes, want 8 for F32 [2]`,
		},
		{
			name: "rename fails",
			setup: func(t *testing.T, path string) {
				// A non-empty directory cannot be renamed over.
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				writeOld(t, filepath.Join(path, "keep"))
			},
			file:    valid,
			wantErr: "rename ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "old")
			tt.setup(t, path)
			before := dirNames(t, dir)

			err := WriteFile(path, tt.file)
			if err == nil {
				t.Fatal("WriteFile succeeded, want error")
			}
			if !strings.HasPrefix(err.Error(), "safetensors: write "+path+": ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("WriteFile error = %q, want it to name the path and contain %q", err, tt.wantErr)
			}
			if after := dirNames(t, dir); !slices.Equal(after, before) {
				t.Errorf("directory holds %q after the failed write, want %q", after, before)
			}
			old := path
			if info, err := os.Stat(path); err == nil && info.IsDir() {
				old = filepath.Join(path, "keep")
			}
			if b, err := os.ReadFile(old); err != nil || string(b) != "old contents" {
				t.Errorf("old file holds %q, %v after the failed write", b, err)
			}
		})
	}
}

// writeOld writes a file with known contents at path.
func writeOld(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFileMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.safetensors")
	err := WriteFile(path, &File{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile error = %v, want a not-exist error naming %s", err, path)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	if err := os.WriteFile(corrupt, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.safetensors")
	tests := []struct {
		name    string
		path    string
		wantErr string
		wantIs  error
	}{
		{"missing", missing, "safetensors: open " + missing + ": no such file or directory", fs.ErrNotExist},
		{"directory", dir, "safetensors: read " + dir + ": is a directory", nil},
		{"corrupt", corrupt, "safetensors: " + corrupt + ": file is 3 bytes, too short for the 8-byte header length", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFile(tt.path)
			if err == nil {
				t.Fatalf("ReadFile succeeded with %d tensors, want error", len(f.Tensors))
			}
			if err.Error() != tt.wantErr {
				t.Errorf("ReadFile error = %q, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("ReadFile error = %v, want it to wrap %v", err, tt.wantIs)
			}
		})
	}
}

func TestReadFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	fd, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: if ReadFile read it, the test would take minutes.
	err = fd.Truncate(MaxFileSize + 1)
	fd.Close()
	if err != nil {
		t.Skipf("cannot create a sparse file: %v", err)
	}
	_, err = ReadFile(path)
	want := "safetensors: read " + path + ": file is 17179869185 bytes, more than the limit of 17179869184"
	if err == nil || err.Error() != want {
		t.Errorf("ReadFile error = %v, want %q", err, want)
	}
}

func TestReadFilePipe(t *testing.T) {
	// A pipe has no size, so ReadFile must grow its buffer as it reads.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	path := fmt.Sprintf("/proc/self/fd/%d", r.Fd())
	if _, err := os.Stat(path); err != nil {
		w.Close()
		t.Skipf("cannot name the pipe: %v", err)
	}
	want := testFile()
	go func() {
		Encode(w, want) // a failure shows as a parse error below
		w.Close()
	}()
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(want, got); d != "" {
		t.Error(d)
	}
}
