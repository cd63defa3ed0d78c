package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// Parse decodes and validates a safetensors file held in memory. The Data of
// each returned tensor aliases b, so b must not be modified while the File is
// in use. The tensors are returned sorted by their offset in the data buffer;
// empty tensors at the same offset are sorted by name. Metadata is nil if the
// header has no "__metadata__" entry.
//
// Parse accepts a file only if its header is a JSON object without duplicate
// keys that describes each tensor completely and consistently, and the
// tensors tile the data buffer exactly: every byte of the buffer belongs to
// exactly one tensor.
func Parse(b []byte) (*File, error) {
	f, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

// parse is Parse without the package prefix on errors.
func parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	switch {
	case n == 0:
		return nil, errors.New("header length is 0")
	case n > MaxHeaderSize:
		return nil, fmt.Errorf("header length %d exceeds the limit of %d", n, MaxHeaderSize)
	case n > uint64(len(b)-8):
		return nil, fmt.Errorf("header length %d exceeds the %d bytes that follow it", n, len(b)-8)
	}
	header, buf := b[8:8+n], b[8+n:]
	if !utf8.Valid(header) {
		return nil, errors.New("header is not valid UTF-8")
	}
	if header[0] != '{' {
		return nil, errors.New("header does not start with '{'")
	}

	meta, entries, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		if err := entries[i].check(len(buf)); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", clip.Quote(entries[i].name), err)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end), cmp.Compare(a.name, b.name))
	})
	if err := checkTiling(entries, len(buf)); err != nil {
		return nil, err
	}

	f := &File{Metadata: meta, Tensors: make([]Tensor, len(entries))}
	for i, e := range entries {
		f.Tensors[i] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: buf[e.begin:e.end:e.end]}
	}
	return f, nil
}

// An entry is a tensor as the header describes it.
type entry struct {
	name  string
	dtype string
	shape []int
	// offsets holds data_offsets as written in the header; begin and end
	// are set from it by check.
	offsets    []int
	begin, end int
}

// check validates e against a data buffer of bufLen bytes and sets e.begin
// and e.end.
func (e *entry) check(bufLen int) error {
	size, ok := DTypeSize(e.dtype)
	if !ok {
		return fmt.Errorf("unknown dtype %s", clip.Quote(e.dtype))
	}
	if len(e.shape) > MaxDims {
		return fmt.Errorf("shape has %d dimensions, more than the %d allowed", len(e.shape), MaxDims)
	}
	n, err := numBytes(size, e.shape)
	if err != nil {
		return err
	}
	if len(e.offsets) != 2 || e.offsets[0] < 0 || e.offsets[1] < 0 {
		return fmt.Errorf("data_offsets %s is not two non-negative integers", clip.Shape(e.offsets))
	}
	begin, end := e.offsets[0], e.offsets[1]
	switch {
	case begin > end:
		return fmt.Errorf("data_offsets %s begins after it ends", clip.Shape(e.offsets))
	case end > bufLen:
		return fmt.Errorf("data_offsets %s ends beyond the %d-byte data buffer", clip.Shape(e.offsets), bufLen)
	case end-begin != n:
		return fmt.Errorf("data_offsets %s span %d bytes, want %d for %s %s", clip.Shape(e.offsets), end-begin, n, e.dtype, clip.Shape(e.shape))
	}
	e.begin, e.end = begin, end
	return nil
}

// checkTiling checks that entries, sorted by offset, cover a data buffer of
// bufLen bytes exactly, with neither gaps nor overlaps.
func checkTiling(entries []entry, bufLen int) error {
	pos := 0
	for i, e := range entries {
		switch {
		case e.begin < pos:
			return fmt.Errorf("tensor %s (bytes %d to %d) overlaps tensor %s (bytes %d to %d)",
				clip.Quote(e.name), e.begin, e.end, clip.Quote(entries[i-1].name), entries[i-1].begin, entries[i-1].end)
		case e.begin > pos:
			return fmt.Errorf("data buffer bytes %d to %d, before tensor %s, belong to no tensor", pos, e.begin, clip.Quote(e.name))
		}
		pos = e.end
	}
	if pos != bufLen {
		return fmt.Errorf("data buffer bytes %d to %d belong to no tensor", pos, bufLen)
	}
	return nil
}

// parseHeader walks the JSON header token by token, which lets it refuse
// duplicate keys that encoding/json would silently accept.
func parseHeader(header []byte) (map[string]string, []entry, error) {
	p := headerParser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	var meta map[string]string
	var entries []entry
	err := p.object("header", func(key string) error {
		var err error
		switch key {
		case metadataKey:
			meta, err = p.metadata()
		case "":
			err = errors.New("tensor name is empty")
		default:
			var e entry
			e, err = p.entry(key)
			entries = append(entries, e)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	// Only whitespace, such as the padding, may follow the object.
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, nil, errors.New("header has data after the JSON object")
	}
	return meta, entries, nil
}

// A headerParser reads the header's JSON tokens.
type headerParser struct {
	dec *json.Decoder
}

// token returns the next JSON token. It reports an unexpected EOF, rather
// than io.EOF, at the end of the input, since the caller always expects one
// more token.
func (p *headerParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	return tok, nil
}

// object reads a JSON object, calling field for each key, which must then
// consume the key's value. It refuses an object with a duplicate key. what
// names the object in errors.
func (p *headerParser) object(what string, field func(key string) error) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%s is not an object", what)
	}
	seen := make(map[string]bool)
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder only accepts string keys
		if seen[key] {
			return fmt.Errorf("%s has duplicate key %s", what, clip.Quote(key))
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	_, err = p.token() // the closing '}'
	return err
}

// metadata reads the value of "__metadata__", an object of strings.
func (p *headerParser) metadata() (map[string]string, error) {
	meta := make(map[string]string)
	err := p.object(metadataKey, func(key string) error {
		tok, err := p.token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s value of %s is not a string", metadataKey, clip.Quote(key))
		}
		meta[key] = s
		return nil
	})
	return meta, err
}

// entryFields lists the fields of a tensor's entry in the header, all of
// which are required.
var entryFields = []string{"dtype", "shape", "data_offsets"}

// entry reads the description of the tensor called name.
func (p *headerParser) entry(name string) (entry, error) {
	e := entry{name: name}
	what := fmt.Sprintf("tensor %s", clip.Quote(name))
	got := make(map[string]bool, len(entryFields))
	err := p.object(what, func(key string) error {
		got[key] = true
		var err error
		switch key {
		case "dtype":
			var tok json.Token
			if tok, err = p.token(); err != nil {
				return err
			}
			var ok bool
			if e.dtype, ok = tok.(string); !ok {
				return fmt.Errorf("%s: dtype is not a string", what)
			}
		case "shape":
			e.shape, err = p.ints(what, key)
		case "data_offsets":
			e.offsets, err = p.ints(what, key)
		default:
			return fmt.Errorf("%s has unknown field %s", what, clip.Quote(key))
		}
		return err
	})
	if err != nil {
		return entry{}, err
	}
	for _, key := range entryFields {
		if !got[key] {
			return entry{}, fmt.Errorf("%s is missing field %q", what, key)
		}
	}
	return e, nil
}

// ints reads an array of integers, the value of field in the object what.
// The result is never nil.
func (p *headerParser) ints(what, field string) ([]int, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%s: %s is not an array of integers", what, field)
	}
	v := []int{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: %s is not an array of integers", what, field)
		}
		i, err := strconv.ParseInt(string(num), 10, strconv.IntSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %s element %s is not an integer in range", what, field, num)
		}
		v = append(v, int(i))
	}
	_, err = p.token() // the closing ']'
	return v, err
}
