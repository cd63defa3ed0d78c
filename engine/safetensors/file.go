package safetensors

import (
	"fmt"
	"io"
	"os"

	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
)

// ReadFile reads and parses the safetensors file at path. It refuses a file
// larger than MaxFileSize before reading it.
func ReadFile(path string) (*File, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return f, nil
}

// readFile reads the whole file at path, up to MaxFileSize bytes.
func readFile(path string) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("read %s: is a directory", path)
	}
	tooLarge := func(size int64) error {
		return fmt.Errorf("read %s: file is %d bytes, more than the limit of %d", path, size, MaxFileSize)
	}
	size := info.Size()
	if size > MaxFileSize {
		return nil, tooLarge(size)
	}
	// One spare byte lets the final Read report EOF without growing the
	// buffer. The buffer grows only if the file grew since Stat, or Stat
	// reported no size, as for a pipe.
	b := make([]byte, 0, size+1)
	for {
		n, err := fd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > MaxFileSize {
			return nil, tooLarge(int64(len(b)))
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// WriteFile encodes f and writes it to path atomically: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. A new file gets permissions 0644; a replaced file
// keeps its permissions.
//
// If WriteFile fails before the rename, as it does when f is invalid, it
// removes the temporary file and leaves path untouched.
// If only the final sync of the directory fails, path holds the new
// contents but they may not survive a crash.
func WriteFile(path string, f *File) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return encode(w, f) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
