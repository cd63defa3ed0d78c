package data

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxInflateRatio bounds how far DEFLATE data (gzip, zlib) can expand: at
// best two bits encode a 258-byte match, which gives 1032:1.
const maxInflateRatio = 1032

// readFull reads exactly n bytes from r. It allocates at most hint bytes up
// front and grows the buffer only as data arrives, so that a header that
// claims a huge size cannot force a huge allocation.
func readFull(r io.Reader, n, hint int) ([]byte, error) {
	buf := make([]byte, 0, max(min(n, hint), 0))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(len(buf), 4096)))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// expectEOF checks that r, from which what was read, has no data left.
// For a compressed stream this also verifies its checksum.
func expectEOF(r io.Reader, what string) error {
	var b [1]byte
	switch _, err := io.ReadFull(r, b[:]); err {
	case nil:
		return fmt.Errorf("trailing data after the %s", what)
	case io.EOF:
		return nil
	default:
		return readError(what, err)
	}
}

// readError describes an error that occurred while reading what: a
// premature end of the data means the input is truncated, and anything else
// comes from a corrupt compressed stream.
func readError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s", what)
	}
	return fmt.Errorf("%s: corrupt data: %w", what, err)
}
