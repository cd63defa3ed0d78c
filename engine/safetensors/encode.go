package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"unicode/utf8"
)

// headerEntry is the JSON form of one tensor in the header. Its fields are
// declared in alphabetical order so that the encoded keys are sorted.
type headerEntry struct {
	DataOffsets [2]int `json:"data_offsets"`
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
}

// Encode writes f to w in the safetensors format. The tensors' data is laid
// out contiguously in the order of f.Tensors. The header's keys are sorted
// and the header is padded with spaces to a multiple of 8 bytes, so the same
// File always encodes to the same bytes. Metadata is written only if it is
// not empty.
//
// Encode validates f before writing anything: tensor names must be
// non-empty, unique and not "__metadata__", names and metadata must be valid
// UTF-8, dtypes must be known, and each tensor's Data must have the length
// its shape and dtype imply.
func Encode(w io.Writer, f *File) error {
	if err := encode(w, f); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// encode is Encode without the package prefix on errors.
func encode(w io.Writer, f *File) error {
	header, err := encodeHeader(f)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	for _, t := range f.Tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("write tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// encodeHeader validates f and returns the length prefix, JSON header and
// padding that precede the data buffer.
func encodeHeader(f *File) ([]byte, error) {
	entries := make(map[string]any, len(f.Tensors)+1)
	offset := 0
	for _, t := range f.Tensors {
		if t.Name == "" {
			return nil, errors.New("tensor name is empty")
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if _, dup := entries[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		size, ok := DTypeSize(t.DType)
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, err := numBytes(size, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if len(t.Data) != n {
			return nil, fmt.Errorf("tensor %q: data is %d bytes, want %d for %s %v",
				t.Name, len(t.Data), n, t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // encode a scalar's shape as [], not null
		}
		// offset+n cannot overflow: both are lengths of slices in memory.
		entries[t.Name] = headerEntry{DataOffsets: [2]int{offset, offset + n}, DType: t.DType, Shape: shape}
		offset += n
	}
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		if v := f.Metadata[k]; !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	if len(f.Metadata) > 0 {
		entries[metadataKey] = f.Metadata
	}

	var buf bytes.Buffer
	buf.Write(make([]byte, 8)) // room for the length prefix
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(entries); err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	buf.Truncate(buf.Len() - 1) // drop the newline Encode appends
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	b := buf.Bytes()
	n := len(b) - 8
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header is %d bytes, more than the limit of %d", n, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(b, uint64(n))
	return b, nil
}
