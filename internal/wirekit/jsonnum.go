package wirekit

import (
	"errors"
	"strconv"
	"unsafe"
)

var errNotInt = errors.New("not an integer")

// Int32 reads a JSON number or a string holding one, as protojson accepts
// for int32 fields: any notation whose value is an integer in range
// ("1", "1.0", "1e2", "-5"); fractions and out-of-range values fail.
func (d *JSONDecoder) Int32() (int32, error) {
	v, err := d.int(32)
	return int32(v), err
}

// Int64 is Int32 for 64-bit fields.
func (d *JSONDecoder) Int64() (int64, error) { return d.int(64) }

// Uint32 is Int32 for unsigned fields.
func (d *JSONDecoder) Uint32() (uint32, error) {
	v, err := d.uint(32)
	return uint32(v), err
}

// Uint64 is Uint32 for 64-bit fields.
func (d *JSONDecoder) Uint64() (uint64, error) { return d.uint(64) }

func (d *JSONDecoder) int(bits int) (int64, error) {
	t, err := d.intText()
	if err != nil {
		return 0, err
	}
	v, err := parseInt(t, bits)
	if err != nil {
		return 0, d.errorf("invalid %d-bit integer %q", bits, t)
	}
	return v, nil
}

func (d *JSONDecoder) uint(bits int) (uint64, error) {
	t, err := d.intText()
	if err != nil {
		return 0, err
	}
	s, ok := normInt(t)
	v, err := strconv.ParseUint(s, 10, bits)
	if !ok || err != nil {
		return 0, d.errorf("invalid unsigned %d-bit integer %q", bits, t)
	}
	return v, nil
}

// intText returns the text of a number token or of a string that holds
// exactly one number (no surrounding space).
func (d *JSONDecoder) intText() (string, error) {
	if d.peek() != '"' {
		return d.numberToken()
	}
	s, err := d.str()
	if err != nil {
		return "", err
	}
	if len(s) == 0 || numberLen(s) != len(s) {
		return "", d.errorf("invalid number %q", s)
	}
	return s, nil
}

// numberToken consumes a number token.
func (d *JSONDecoder) numberToken() (string, error) {
	d.peek()
	r := d.b[d.i:]
	// A view of the input, not a copy: one numberLen for both types.
	n := numberLen(unsafe.String(unsafe.SliceData(r), len(r)))
	if n == 0 || n < len(r) && !isDelim(r[n]) {
		return "", d.unexpected("a number")
	}
	d.i += n
	return string(r[:n]), nil
}

// numberLen is the length of the RFC 8259 number at the start of s, 0 if
// there is none.
func numberLen(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i+1)
	default:
		return 0
	}
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i = digits(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			i = digits(s, j)
		}
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func parseInt(t string, bits int) (int64, error) {
	s, ok := normInt(t)
	if !ok {
		return 0, errNotInt
	}
	return strconv.ParseInt(s, 10, bits)
}

// normInt rewrites a valid number token as plain decimal digits when its
// value is an integer ("1.50e1" -> "15"), as protojson does.
func normInt(t string) (string, bool) {
	neg := t[0] == '-'
	if neg {
		t = t[1:]
	}
	var intp, frac string
	if t[0] == '0' {
		t = t[1:]
	} else {
		j := digits(t, 0)
		intp, t = t[:j], t[j:]
	}
	if len(t) > 0 && t[0] == '.' {
		j := digits(t, 1)
		frac, t = t[1:j], t[j:]
	}
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if intp == "" && frac == "" {
		return "0", true
	}
	exp := 0
	if len(t) > 0 {
		e, err := strconv.ParseInt(t[1:], 10, 32)
		if err != nil {
			return "", false
		}
		exp = int(e)
	}
	var num string
	if exp >= 0 {
		// Shift the fraction into the integer part, padding with zeros.
		if len(frac) > exp || len(intp)+exp > 20 {
			return "", false
		}
		num = intp + frac
		for i := len(frac); i < exp; i++ {
			num += "0"
		}
	} else {
		// Shift integer digits out; every one of them must be zero.
		idx := len(intp) + exp
		if len(frac) > 0 || idx < 0 {
			return "", false
		}
		for i := idx; i < len(intp); i++ {
			if intp[i] != '0' {
				return "", false
			}
		}
		num = intp[:idx]
	}
	if neg {
		return "-" + num, true
	}
	return num, true
}

// Skip consumes one value of any kind, checking its syntax (unknown
// fields).
func (d *JSONDecoder) Skip() error {
	switch c := d.peek(); {
	case c == '{':
		return d.Object(func(string) error { return d.Skip() })
	case c == '[':
		return d.Array(d.Skip)
	case c == '"':
		_, err := d.str()
		return err
	case c == 't' || c == 'f':
		_, err := d.Bool()
		return err
	case c == 'n':
		if d.Null() {
			return nil
		}
	case c == '-' || isDigit(c):
		_, err := d.numberToken()
		return err
	}
	return d.unexpected("a value")
}
