package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Float32s decodes little-endian F32 data, preserving every bit, NaN
// payloads included. It fails if len(data) is not a multiple of 4.
func Float32s(data []byte) ([]float32, error) {
	return decode(data, "F32", func(b []byte) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	})
}

// FromFloat32s encodes v as little-endian F32 data, preserving every bit.
func FromFloat32s(v []float32) []byte {
	return encodeValues(v, 4, func(b []byte, x float32) {
		binary.LittleEndian.PutUint32(b, math.Float32bits(x))
	})
}

// Float64s decodes little-endian F64 data, preserving every bit, NaN
// payloads included. It fails if len(data) is not a multiple of 8.
func Float64s(data []byte) ([]float64, error) {
	return decode(data, "F64", func(b []byte) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	})
}

// FromFloat64s encodes v as little-endian F64 data, preserving every bit.
func FromFloat64s(v []float64) []byte {
	return encodeValues(v, 8, func(b []byte, x float64) {
		binary.LittleEndian.PutUint64(b, math.Float64bits(x))
	})
}

// Int32s decodes little-endian I32 data. It fails if len(data) is not a
// multiple of 4.
func Int32s(data []byte) ([]int32, error) {
	return decode(data, "I32", func(b []byte) int32 {
		return int32(binary.LittleEndian.Uint32(b))
	})
}

// FromInt32s encodes v as little-endian I32 data.
func FromInt32s(v []int32) []byte {
	return encodeValues(v, 4, func(b []byte, x int32) {
		binary.LittleEndian.PutUint32(b, uint32(x))
	})
}

// Int64s decodes little-endian I64 data. It fails if len(data) is not a
// multiple of 8.
func Int64s(data []byte) ([]int64, error) {
	return decode(data, "I64", func(b []byte) int64 {
		return int64(binary.LittleEndian.Uint64(b))
	})
}

// FromInt64s encodes v as little-endian I64 data.
func FromInt64s(v []int64) []byte {
	return encodeValues(v, 8, func(b []byte, x int64) {
		binary.LittleEndian.PutUint64(b, uint64(x))
	})
}

// Uint8s returns a copy of U8 data as a slice of its own.
func Uint8s(data []byte) []uint8 {
	return slices.Clone(data)
}

// FromUint8s returns a copy of v to use as U8 data.
func FromUint8s(v []uint8) []byte {
	return slices.Clone(v)
}

// decode splits data into elements of dtype and converts each with get.
func decode[T any](data []byte, dtype string, get func([]byte) T) ([]T, error) {
	size := dtypeSizes[dtype]
	if len(data)%size != 0 {
		return nil, fmt.Errorf("safetensors: %d bytes is not a whole number of %d-byte %s elements", len(data), size, dtype)
	}
	v := make([]T, len(data)/size)
	for i := range v {
		v[i] = get(data[i*size:])
	}
	return v, nil
}

// encodeValues returns the size-byte encodings of v's elements, written by
// put, one after another.
func encodeValues[T any](v []T, size int, put func([]byte, T)) []byte {
	b := make([]byte, len(v)*size)
	for i, x := range v {
		put(b[i*size:], x)
	}
	return b
}
