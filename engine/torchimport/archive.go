package torchimport

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// MaxFileSize is the largest checkpoint Read accepts; larger files are
// refused before their contents are read.
const MaxFileSize int64 = 8 << 30

// Formats of PyTorch checkpoints.
const (
	FormatZip    = "zip"    // torch.save since torch 1.6
	FormatLegacy = "legacy" // _use_new_zipfile_serialization=False
)

// legacyMagic is the number torch's legacy format pickles first
// (0x1950a86a20f9469cfc6c), as LONG1's little-endian bytes.
var legacyMagic = []byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// Read parses the PyTorch checkpoint at path.
func Read(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a checkpoint may have", path, st.Size(), MaxFileSize)
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses a PyTorch checkpoint held in memory. The tensors it returns
// refer to b.
func Parse(b []byte) (*Checkpoint, error) {
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return parseZip(b)
	case len(b) > 2+len(legacyMagic) && b[0] == 0x80 && b[2] == 0x8a:
		return parseLegacy(b)
	case bytes.HasPrefix(b, []byte{0x80}):
		return nil, fmt.Errorf("a bare pickle, not a torch.save checkpoint")
	}
	return nil, fmt.Errorf("not a PyTorch checkpoint (neither the zip nor the legacy format)")
}

// storages maps storage keys to their bytes once the container is read.
type storages map[string][]byte

// parseZip reads torch's zip format: <archive>/data.pkl holds the object,
// <archive>/data/<key> each storage's bytes. torch writes every entry
// uncompressed, so entries are used in place.
func parseZip(b []byte) (*Checkpoint, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	var prefix string
	var pkl []byte
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := entries[f.Name]; dup {
			return nil, fmt.Errorf("zip entry %s appears twice", describe(f.Name))
		}
		entries[f.Name] = f
		if dir, ok := strings.CutSuffix(f.Name, "/data.pkl"); ok && !strings.Contains(dir, "/") {
			if pkl != nil {
				return nil, fmt.Errorf("zip holds more than one data.pkl")
			}
			prefix = dir + "/"
			if pkl, err = entryBytes(b, f); err != nil {
				return nil, err
			}
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("zip holds no <archive>/data.pkl: not a torch.save checkpoint")
	}
	if f, ok := entries[prefix+"byteorder"]; ok {
		order, err := entryBytes(b, f)
		if err != nil {
			return nil, err
		}
		if string(order) != "little" {
			return nil, fmt.Errorf("byte order %s (only little-endian checkpoints are read)", describe(string(order)))
		}
	}
	refs := storageTable{}
	obj, _, err := unpickle(pkl, 0, refs.load)
	if err != nil {
		return nil, err
	}
	data := storages{}
	for key := range refs {
		f, ok := entries[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %s has no zip entry", describe(key))
		}
		if data[key], err = entryBytes(b, f); err != nil {
			return nil, err
		}
	}
	return newCheckpoint(FormatZip, obj, refs, data)
}

// entryBytes returns a stored zip entry's bytes in place, after checking
// that they lie inside the file and match their checksum.
func entryBytes(b []byte, f *zip.File) ([]byte, error) {
	if f.Method != zip.Store {
		return nil, fmt.Errorf("zip entry %s is compressed (torch.save stores entries uncompressed)", describe(f.Name))
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("zip entry %s: %w", describe(f.Name), err)
	}
	n := f.UncompressedSize64
	if off < 0 || off > int64(len(b)) || n != f.CompressedSize64 || n > uint64(int64(len(b))-off) {
		return nil, fmt.Errorf("zip entry %s: %d bytes at %d lie outside the file (a truncated or damaged file)", describe(f.Name), n, off)
	}
	e := b[off : off+int64(n)]
	if crc32.ChecksumIEEE(e) != f.CRC32 {
		return nil, fmt.Errorf("zip entry %s: checksum mismatch (damaged file)", describe(f.Name))
	}
	return e, nil
}

// parseLegacy reads torch's legacy format: pickles of the magic number, the
// protocol version, a system-information dict, the object, and the list of
// storage keys, then each storage in that order as an 8-byte element count
// and its raw bytes.
func parseLegacy(b []byte) (*Checkpoint, error) {
	magic, pos, err := unpickle(b, 0, nil)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(pyBigInt); !ok || !bytes.Equal(m, legacyMagic) {
		return nil, fmt.Errorf("legacy format: wrong magic number")
	}
	version, pos, err := unpickle(b, pos, nil)
	if err != nil {
		return nil, err
	}
	if version != int64(1001) {
		return nil, fmt.Errorf("legacy format: protocol version %v (only 1001 is known)", describe(version))
	}
	info, pos, err := unpickle(b, pos, nil)
	if err != nil {
		return nil, err
	}
	if d, ok := info.(*pyDict); !ok || lookup(d, "little_endian") != true {
		return nil, fmt.Errorf("legacy format: not written on a little-endian machine")
	}
	refs := storageTable{}
	obj, pos, err := unpickle(b, pos, refs.load)
	if err != nil {
		return nil, err
	}
	keys, pos, err := unpickle(b, pos, nil)
	if err != nil {
		return nil, err
	}
	list, ok := keys.(*pyList)
	if !ok {
		return nil, fmt.Errorf("legacy format: the storage keys are %s, not a list", describe(keys))
	}
	data := storages{}
	for _, k := range list.items {
		key, ok := k.(string)
		s := refs[key]
		if !ok || s == nil {
			return nil, fmt.Errorf("legacy format: storage key %s is not referenced", describe(k))
		}
		if _, dup := data[key]; dup {
			return nil, fmt.Errorf("legacy format: storage %s listed twice", describe(key))
		}
		if len(b)-pos < 8 {
			return nil, fmt.Errorf("legacy format: the file is truncated: it ends before storage %s", describe(key))
		}
		numel := binary.LittleEndian.Uint64(b[pos:])
		pos += 8
		if numel != uint64(s.numel) {
			return nil, fmt.Errorf("legacy format: storage %s has %d elements, but the pickle declares %d", describe(key), numel, s.numel)
		}
		size, _ := dtypeSize(s.dtype)
		if numel > uint64(len(b)-pos)/uint64(size) {
			return nil, fmt.Errorf("legacy format: the file is truncated: storage %s needs %d bytes, %d are left", describe(key), numel*uint64(size), len(b)-pos)
		}
		n := int(numel) * size
		data[key] = b[pos : pos+n]
		pos += n
	}
	if pos != len(b) {
		return nil, fmt.Errorf("legacy format: %d bytes follow the last storage (a damaged file, or two files joined)", len(b)-pos)
	}
	for _, key := range slices.Sorted(maps.Keys(refs)) {
		if _, ok := data[key]; !ok {
			return nil, fmt.Errorf("legacy format: storage %s is used by a tensor but not stored", describe(key))
		}
	}
	return newCheckpoint(FormatLegacy, obj, refs, data)
}

// storageTable collects the storages an object pickle refers to.
type storageTable map[string]*storageRef

// load resolves a persistent id; a key named twice must name the same
// storage.
func (t storageTable) load(pid any) (any, error) {
	s, err := parseStorageID(pid)
	if err != nil {
		return nil, err
	}
	if old, ok := t[s.key]; ok {
		if old.dtype != s.dtype || old.numel != s.numel {
			return nil, fmt.Errorf("storage %s declared twice differently", describe(s.key))
		}
		return old, nil
	}
	t[s.key] = s
	return s, nil
}

// lookup finds a string key in a dict (the last setting wins, as in Python).
func lookup(d *pyDict, key string) any {
	var v any
	for i, k := range d.keys {
		if k == key {
			v = d.values[i]
		}
	}
	return v
}
