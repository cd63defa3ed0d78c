package jsonerr

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	type inner struct {
		Classes int     `json:"classes"`
		Width   float64 `json:"width"`
		Arch    string  `json:"arch"`
	}
	cases := []struct{ doc, want string }{
		{`{"classes":"ten"}`, `"classes" is text, want a whole number in range`},
		{`{"classes":1.5}`, `"classes" is the number 1.5, want a whole number in range`},
		{`{"width":1e999}`, `"width" is the number 1e999, want a number in range`},
		{`{"arch":[1]}`, `"arch" is a list, want text`},
		{`[1]`, `the value is a list, want an object`},
		{`{"classes":`, `the JSON ends early`},
		{`{"classes":x}`, `not valid JSON at byte 12: invalid character 'x' looking for beginning of value`},
		{`{"` + strings.Repeat("z", 500) + `":1}`, `unknown field "` + strings.Repeat("z", 45) + `"…`},
	}
	for _, c := range cases {
		dec := json.NewDecoder(strings.NewReader(c.doc))
		dec.DisallowUnknownFields()
		var v inner
		err := dec.Decode(&v)
		if c.doc == `{"classes":` {
			err = json.Unmarshal([]byte(c.doc), &v)
		}
		if got := Describe(err); got != c.want {
			t.Errorf("%.40s: %q, want %q (from %v)", c.doc, got, c.want, err)
		}
	}
}

func TestValue(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, "null"}, {true, "true"}, {2.5, "2.5"}, {3, "3"}, {"high", "high"}, {"a\nb", `"a\nb"`},
		{[]any{1.0, 2.0}, "[1 2]"}, {make([]any, 30), "a list of 30"}, {[]any{map[string]any{}}, "a list of 1"},
		{map[string]any{"a": 1.0}, "an object of 1 entries"},
		{strings.Repeat("x", 500), `"` + strings.Repeat("x", 45) + `"…`},
	} {
		if got := Value(c.v); got != c.want {
			t.Errorf("Value(%.20v) = %s, want %s", c.v, got, c.want)
		}
	}
}
