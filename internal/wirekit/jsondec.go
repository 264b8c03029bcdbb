package wirekit

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds object and array nesting (protojson's recursion
// limit).
const maxJSONDepth = 10000

// JSONDecoder reads proto3 JSON for generated decoders: strict RFC 8259
// syntax, with the value conversions protojson accepts. Errors carry the
// byte offset.
type JSONDecoder struct {
	b     []byte
	i     int
	depth int
}

// NewJSONDecoder reads b.
func NewJSONDecoder(b []byte) *JSONDecoder { return &JSONDecoder{b: b} }

func (d *JSONDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("proto JSON: offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

// unexpected reports what was found where want was expected.
func (d *JSONDecoder) unexpected(want string) error {
	if d.i >= len(d.b) {
		return d.errorf("unexpected end of input, want %s", want)
	}
	return d.errorf("unexpected character %q, want %s", d.b[d.i], want)
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (d *JSONDecoder) peek() byte {
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return c
		}
	}
	return 0
}

// End checks that only whitespace follows the top-level value.
func (d *JSONDecoder) End() error {
	if d.peek(); d.i != len(d.b) {
		return d.errorf("unexpected data after the top-level value")
	}
	return nil
}

// Present starts a member of a message: it fails when field bit was
// already given (by either of its names), marks it, and consumes a null,
// reporting false: null leaves a field unset.
func (d *JSONDecoder) Present(seen *uint64, bit uint, name string) (bool, error) {
	if *seen&(1<<bit) != 0 {
		return false, d.errorf("duplicate field %q", name)
	}
	*seen |= 1 << bit
	return !d.Null(), nil
}

// Oneof fails when a member of oneof bit was already given.
func (d *JSONDecoder) Oneof(seen *uint64, bit uint, name, oneof string) error {
	if *seen&(1<<bit) != 0 {
		return d.errorf("field %q: oneof %s is already set", name, oneof)
	}
	*seen |= 1 << bit
	return nil
}

// DuplicateKey is the error for a map key given twice.
//
//go:noinline
func (d *JSONDecoder) DuplicateKey(key string) error { return d.errorf("duplicate map key %q", key) }

// ObjectStart consumes '{'.
func (d *JSONDecoder) ObjectStart() error {
	if d.peek() != '{' {
		return d.unexpected("'{'")
	}
	return d.open()
}

func (d *JSONDecoder) open() error {
	d.i++
	if d.depth++; d.depth > maxJSONDepth {
		return d.errorf("nesting exceeds %d levels", maxJSONDepth)
	}
	return nil
}

// Member reads the next member's key and ':' or, with more false, the
// closing '}'. first says whether a member may follow '{' without a comma.
func (d *JSONDecoder) Member(first bool) (key string, more bool, err error) {
	c := d.peek()
	if c == '}' {
		d.i++
		d.depth--
		return "", false, nil
	}
	if !first {
		if c != ',' {
			return "", false, d.unexpected("',' or '}'")
		}
		d.i++
	}
	if d.peek() != '"' {
		return "", false, d.unexpected("a string key")
	}
	if key, err = d.str(); err != nil {
		return "", false, err
	}
	if d.peek() != ':' {
		return "", false, d.unexpected("':'")
	}
	d.i++
	return key, true, nil
}

// ArrayStart consumes '['.
func (d *JSONDecoder) ArrayStart() error {
	if d.peek() != '[' {
		return d.unexpected("'['")
	}
	return d.open()
}

// Elem prepares the next element or, with more false, consumes ']'.
func (d *JSONDecoder) Elem(first bool) (more bool, err error) {
	c := d.peek()
	if c == ']' {
		d.i++
		d.depth--
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, d.unexpected("',' or ']'")
		}
		d.i++
	}
	return true, nil
}

// isDelim says whether c may end a number or literal (protojson's rule).
func isDelim(c byte) bool {
	return !(c == '-' || c == '+' || c == '.' || c == '_' ||
		'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z')
}

func (d *JSONDecoder) literal(s string) bool {
	r := d.b[d.i:]
	if len(r) < len(s) || string(r[:len(s)]) != s || len(r) > len(s) && !isDelim(r[len(s)]) {
		return false
	}
	d.i += len(s)
	return true
}

// Null consumes a null and reports whether there was one.
func (d *JSONDecoder) Null() bool { return d.peek() == 'n' && d.literal("null") }

// Bool reads true or false.
func (d *JSONDecoder) Bool() (bool, error) {
	switch d.peek() {
	case 't':
		if d.literal("true") {
			return true, nil
		}
	case 'f':
		if d.literal("false") {
			return false, nil
		}
	}
	return false, d.unexpected("true or false")
}

// String reads a string.
func (d *JSONDecoder) String() (string, error) {
	if d.peek() != '"' {
		return "", d.unexpected("a string")
	}
	return d.str()
}

// str reads the string starting at the '"' at d.i: escapes resolved, raw
// control characters, invalid UTF-8 and unpaired surrogates refused.
func (d *JSONDecoder) str() (string, error) {
	d.i++
	start := d.i
	var out []byte
	for {
		if d.i >= len(d.b) {
			return "", d.unexpected("'\"'")
		}
		c := d.b[d.i]
		if c != '"' && c != '\\' && c >= ' ' {
			d.i++
			continue
		}
		seg := d.b[start:d.i]
		if !utf8.Valid(seg) {
			return "", d.errorf("invalid UTF-8 in string")
		}
		switch {
		case c < ' ':
			return "", d.errorf("control character %q in string", c)
		case c == '"' && out == nil:
			d.i++
			return string(seg), nil
		case c == '"':
			d.i++
			return string(append(out, seg...)), nil
		}
		out = append(out, seg...)
		if d.i+1 >= len(d.b) {
			return "", d.unexpected("an escape")
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
					return "", d.errorf("unpaired surrogate in string")
				}
				d.i += 2
				r2, err := d.hex4()
				if err != nil {
					return "", err
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", d.errorf("unpaired surrogate in string")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			d.i -= 2
			return "", d.errorf("invalid escape %q in string", e)
		}
		start = d.i
	}
}

func (d *JSONDecoder) hex4() (rune, error) {
	if d.i+4 > len(d.b) {
		return 0, d.errorf("truncated \\u escape")
	}
	v, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 16)
	if err != nil {
		return 0, d.errorf("invalid \\u escape %q", d.b[d.i:d.i+4])
	}
	d.i += 4
	return rune(v), nil
}

// Bytes reads a string of base64 in the standard or URL alphabet, padded
// or not.
func (d *JSONDecoder) Bytes() ([]byte, error) {
	s, err := d.String()
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	v, err := enc.DecodeString(s)
	if err != nil {
		return nil, d.errorf("invalid base64: %v", err)
	}
	return v, nil
}

// Enum reads an enum value: a name of e, or a 32-bit number. An unknown
// name gives ok false (the field stays unset, as with protojson's
// DiscardUnknown).
func (d *JSONDecoder) Enum(e *Enum) (v int32, ok bool, err error) {
	if d.peek() == '"' {
		s, err := d.str()
		if err != nil {
			return 0, false, err
		}
		v, ok = e.Value(s)
		return v, ok, nil
	}
	t, err := d.numberToken()
	if err != nil {
		return 0, false, err
	}
	n, err := parseInt(t, 32)
	if err != nil {
		return 0, false, d.errorf("invalid enum number %s", t)
	}
	return int32(n), true, nil
}

// Raw returns the next value's JSON text as it is, after checking its
// syntax; the result aliases the input.
func (d *JSONDecoder) Raw() ([]byte, error) {
	d.peek()
	start := d.i
	if err := d.Skip(); err != nil {
		return nil, err
	}
	return d.b[start:d.i], nil
}

// Object reads one JSON object, calling member for each key with the
// decoder positioned at the value, which member must consume (Skip for
// keys it does not know). A null object reads as empty.
func (d *JSONDecoder) Object(member func(key string) error) error {
	if d.Null() {
		return nil
	}
	if err := d.ObjectStart(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, more, err := d.Member(first)
		if err != nil || !more {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
	}
}

// Array reads one JSON array, calling elem with the decoder positioned at
// each element, which elem must consume. A null array reads as empty.
func (d *JSONDecoder) Array(elem func() error) error {
	if d.Null() {
		return nil
	}
	if err := d.ArrayStart(); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := d.Elem(first)
		if err != nil || !more {
			return err
		}
		if err := elem(); err != nil {
			return err
		}
	}
}

// NullableString reads a string; null reads as "".
func (d *JSONDecoder) NullableString() (string, error) {
	if d.Null() {
		return "", nil
	}
	return d.String()
}
