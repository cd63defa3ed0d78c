// Package jsonerr rewrites encoding/json's decoding errors in a user's
// words: no Go type names, nothing from the input longer than a short
// quote, one line.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// Describe says what is wrong with a JSON document that json.Unmarshal or
// a json.Decoder refused with err.
func Describe(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && strings.HasPrefix(syntax.Error(), "unexpected end"):
		return "the JSON ends early"
	case errors.As(err, &syntax):
		return fmt.Sprintf("not valid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		what := "the value"
		if typ.Field != "" {
			what = clip.Quote(typ.Field)
		}
		return fmt.Sprintf("%s is %s, want %s", what, valueWords(typ.Value), typeWords(typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if field, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if f, err := strconv.Unquote(field); err == nil {
			field = f
		}
		return "unknown field " + clip.Quote(field)
	}
	return clip.String(msg, 120)
}

// Value describes a value decoded from JSON (or YAML) briefly, as a user
// wrote it: short printable text, numbers, booleans and short lists as
// they are, long or unprintable text quoted and cut, anything else by its
// kind.
func Value(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) <= shortValue && strings.IndexFunc(x, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
			return x
		}
		return clip.Quote(x)
	case []any:
		if s := fmt.Sprint(x); len(s) <= shortValue && !strings.Contains(s, "map[") {
			return s
		}
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		return fmt.Sprintf("an object of %d entries", len(x))
	}
	return clip.String(fmt.Sprint(v), shortValue)
}

// shortValue is the longest value Value shows as it is.
const shortValue = 40

// valueWords names the kind of JSON value json reports ("string",
// "number 1.5", "object", ...).
func valueWords(v string) string {
	switch {
	case v == "string":
		return "text"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return "the number " + clip.String(strings.TrimPrefix(v, "number "), 30)
	case v == "object":
		return "an object"
	case v == "array":
		return "a list"
	case v == "bool":
		return "true or false"
	}
	return clip.String(v, 30)
}

// typeWords names what a Go type accepts.
func typeWords(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number in range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number in range"
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return typeWords(t.Elem())
	}
	return "another kind of value"
}
