package safetensors

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// u8 returns the header entry of a U8 tensor of n elements stored at data
// offsets begin to end.
func u8(n, begin, end int) string {
	return fmt.Sprintf(`{"dtype":"U8","shape":[%d],"data_offsets":[%d,%d]}`, n, begin, end)
}

// withLength returns a file whose header length field is n, followed by
// rest.
func withLength(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func TestParseErrors(t *testing.T) {
	four := []byte{1, 2, 3, 4}
	tests := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		// The length prefix.
		{"empty file", nil, "file is 0 bytes, too short for the 8-byte header length"},
		{"short file", []byte{1, 2, 3}, "file is 3 bytes, too short for the 8-byte header length"},
		{"zero header length", withLength(0, "{}"), "header length is 0"},
		{"header over limit", withLength(MaxHeaderSize+1, "{}"), "header length 100000001 exceeds the limit of 100000000"},
		{"huge header length", withLength(1<<63, "{}"), "header length 9223372036854775808 exceeds the limit of 100000000"},
		{"header past end", withLength(100, "{}      "), "header length 100 exceeds the 8 bytes that follow it"},

		// The header as JSON.
		{"invalid UTF-8", rawFile("{\"\xff\":1}"), "header is not valid UTF-8"},
		{"array", rawFile("[]"), "header does not start with '{'"},
		{"leading space", rawFile(" {}"), "header does not start with '{'"},
		{"truncated", rawFile(`{"a":`), "header is not valid JSON: unexpected EOF"},
		{"syntax error", rawFile(`{"a" 1}`), "header is not valid JSON: invalid character '1' after object key"},
		{"trailing garbage", rawFile(`{} x`), "header has data after the JSON object"},
		{"two objects", rawFile(`{}{}`), "header has data after the JSON object"},
		{"NUL padding", rawFile("{}\x00\x00"), "header has data after the JSON object"},
		{"duplicate tensor", rawFile(`{"a":`+u8(1, 0, 1)+`,"a":`+u8(1, 0, 1)+`}`, 1), `header has duplicate key "a"`},
		{"duplicate metadata", rawFile(`{"__metadata__":{},"__metadata__":{}}`), `header has duplicate key "__metadata__"`},
		{"empty name", rawFile(`{"":` + u8(0, 0, 0) + `}`), "tensor name is empty"},
		{"65 dimensions", rawFile(`{"a":{"dtype":"U8","shape":[`+strings.Repeat("1,", 64)+`1],"data_offsets":[0,1]}}`, 1), `tensor "a": shape has 65 dimensions, more than the 64 allowed`},
		{"a long name missing a field", rawFile(`{"` + strings.Repeat("m", 1000) + `":{"dtype":"U8","shape":[]}}`), `tensor "` + strings.Repeat("m", 45) + `"… is missing field "data_offsets"`},
		{"a long name", rawFile(`{"` + strings.Repeat("n", 1000) + `":{"dtype":"X","shape":[],"data_offsets":[0,0]}}`), `tensor "` + strings.Repeat("n", 45) + `"…: unknown dtype "X"`},

		// The metadata.
		{"metadata array", rawFile(`{"__metadata__":[]}`), "__metadata__ is not an object"},
		{"metadata null", rawFile(`{"__metadata__":null}`), "__metadata__ is not an object"},
		{"metadata number", rawFile(`{"__metadata__":{"k":1}}`), `__metadata__ value of "k" is not a string`},
		{"metadata object", rawFile(`{"__metadata__":{"k":{}}}`), `__metadata__ value of "k" is not a string`},
		{"metadata duplicate key", rawFile(`{"__metadata__":{"k":"v","k":"w"}}`), `__metadata__ has duplicate key "k"`},

		// The structure of an entry.
		{"entry not object", rawFile(`{"a":[]}`), `tensor "a" is not an object`},
		{"duplicate field", rawFile(`{"a":{"dtype":"U8","dtype":"U8"}}`), `tensor "a" has duplicate key "dtype"`},
		{"unknown field", rawFile(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"offsets":[0,1]}}`, 1), `tensor "a" has unknown field "offsets"`},
		{"missing dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "a" is missing field "dtype"`},
		{"missing shape", rawFile(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, 1), `tensor "a" is missing field "shape"`},
		{"missing data_offsets", rawFile(`{"a":{"dtype":"U8","shape":[1]}}`, 1), `tensor "a" is missing field "data_offsets"`},
		{"dtype not string", rawFile(`{"a":{"dtype":4}}`), `tensor "a": dtype is not a string`},
		{"shape not array", rawFile(`{"a":{"shape":2}}`), `tensor "a": shape is not an array of integers`},
		{"shape of strings", rawFile(`{"a":{"shape":["2"]}}`), `tensor "a": shape is not an array of integers`},
		{"shape of floats", rawFile(`{"a":{"shape":[1.5]}}`), `tensor "a": shape element 1.5 is not an integer in range`},
		{"shape exponent", rawFile(`{"a":{"shape":[1e2]}}`), `tensor "a": shape element 1e2 is not an integer in range`},
		{"shape out of range", rawFile(`{"a":{"shape":[9223372036854775808]}}`), `tensor "a": shape element 9223372036854775808 is not an integer in range`},
		{"data_offsets not array", rawFile(`{"a":{"data_offsets":null}}`), `tensor "a": data_offsets is not an array of integers`},
		{"data_offsets nested", rawFile(`{"a":{"data_offsets":[[0]]}}`), `tensor "a": data_offsets is not an array of integers`},

		// The values of an entry.
		{"unknown dtype", rawFile(`{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "a": unknown dtype "F8"`},
		{"lower-case dtype", rawFile(`{"a":{"dtype":"u8","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "a": unknown dtype "u8"`},
		{"negative dimension", rawFile(`{"a":{"dtype":"U8","shape":[2,-1],"data_offsets":[0,0]}}`), `tensor "a": shape [2 -1] has a negative dimension`},
		{"shape overflow", rawFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`), `tensor "a": shape [4294967296 4294967296 0] overflows`},
		{"byte size overflow", rawFile(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`), `tensor "a": shape [2305843009213693952] overflows`},
		{"one offset", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1]}}`, 1), `tensor "a": data_offsets [1] is not two non-negative integers`},
		{"three offsets", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}`, 1), `tensor "a": data_offsets [0 1 1] is not two non-negative integers`},
		{"negative offset", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, 1), `tensor "a": data_offsets [-1 0] is not two non-negative integers`},
		{"reversed offsets", rawFile(`{"a":`+u8(0, 1, 0)+`}`, 1), `tensor "a": data_offsets [1 0] begins after it ends`},
		{"offsets past buffer", rawFile(`{"a":`+u8(8, 0, 8)+`}`, four...), `tensor "a": data_offsets [0 8] ends beyond the 4-byte data buffer`},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four...), `tensor "a": data_offsets [0 4] span 4 bytes, want 8 for F32 [2]`},
		{"scalar size mismatch", rawFile(`{"a":{"dtype":"I16","shape":[],"data_offsets":[0,4]}}`, four...), `tensor "a": data_offsets [0 4] span 4 bytes, want 2 for I16 []`},

		// The layout of the data buffer.
		{"overlap", rawFile(`{"a":`+u8(3, 0, 3)+`,"b":`+u8(3, 1, 4)+`}`, four...), `tensor "b" (bytes 1 to 4) overlaps tensor "a" (bytes 0 to 3)`},
		{"same range", rawFile(`{"b":`+u8(4, 0, 4)+`,"a":`+u8(4, 0, 4)+`}`, four...), `tensor "b" (bytes 0 to 4) overlaps tensor "a" (bytes 0 to 4)`},
		{"gap", rawFile(`{"a":`+u8(1, 0, 1)+`,"b":`+u8(1, 3, 4)+`}`, four...), `data buffer bytes 1 to 3, before tensor "b", belong to no tensor`},
		{"leading gap", rawFile(`{"a":`+u8(2, 2, 4)+`}`, four...), `data buffer bytes 0 to 2, before tensor "a", belong to no tensor`},
		{"trailing bytes", rawFile(`{"a":`+u8(3, 0, 3)+`}`, four...), "data buffer bytes 3 to 4 belong to no tensor"},
		{"data without tensors", rawFile(`{}`, four...), "data buffer bytes 0 to 4 belong to no tensor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.file)
			if err == nil {
				t.Fatalf("Parse succeeded with %d tensors, want error", len(f.Tensors))
			}
			if want := "safetensors: " + tt.wantErr; err.Error() != want {
				t.Errorf("Parse error = %q, want %q", err, want)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name      string
		file      []byte
		wantNames []string
		wantMeta  map[string]string
	}{
		{"empty object", rawFile(`{}`), nil, nil},
		{"space padding", rawFile(`{}      `), nil, nil},
		{"JSON whitespace", rawFile("{ \"a\" :\n\t"+u8(1, 0, 1)+" }\r\n", 1), []string{"a"}, nil},
		{"empty metadata", rawFile(`{"__metadata__":{}}`), nil, map[string]string{}},
		{"metadata", rawFile(`{"__metadata__":{"k":"v","\u00e9":"\n"}}`), nil, map[string]string{"k": "v", "é": "\n"}},
		{"escaped name", rawFile(`{"a\/b\u0000":`+u8(1, 0, 1)+`}`, 1), []string{"a/b\x00"}, nil},
		{"name like a dtype", rawFile(`{"dtype":`+u8(1, 0, 1)+`}`, 1), []string{"dtype"}, nil},
		{"fields in any order", rawFile(`{"a":{"data_offsets":[0,1],"shape":[1],"dtype":"U8"}}`, 1), []string{"a"}, nil},
		{"negative zero", rawFile(`{"a":{"dtype":"U8","shape":[-0],"data_offsets":[-0,0]}}`), []string{"a"}, nil},
		{"empty tensors only", rawFile(`{"b":` + u8(0, 0, 0) + `,"a":` + u8(0, 0, 0) + `}`), []string{"a", "b"}, nil},
		{"empty tensor at end", rawFile(`{"a":`+u8(1, 0, 1)+`,"b":`+u8(0, 1, 1)+`}`, 1), []string{"a", "b"}, nil},
		{"huge empty tensor", rawFile(`{"a":{"dtype":"U64","shape":[0,4611686018427387904],"data_offsets":[0,0]}}`), []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.file)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var names []string
			for _, tensor := range f.Tensors {
				names = append(names, tensor.Name)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("tensors %q, want %q", names, tt.wantNames)
			}
			if !maps.Equal(f.Metadata, tt.wantMeta) || (f.Metadata == nil) != (tt.wantMeta == nil) {
				t.Errorf("metadata %#v, want %#v", f.Metadata, tt.wantMeta)
			}
		})
	}
}

func TestParseDataAliasesInput(t *testing.T) {
	b := rawFile(`{"a":`+u8(1, 0, 1)+`,"b":`+u8(1, 1, 2)+`}`, 1, 2)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Get("a")
	if &a.Data[0] != &b[len(b)-2] {
		t.Error("tensor data does not alias the input")
	}
	// Appending to one tensor's data must not overwrite the next one's.
	_ = append(a.Data, 9)
	if b[len(b)-1] != 2 {
		t.Error("appending to a tensor's data overwrote the next tensor")
	}
}
