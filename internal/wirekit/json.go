package wirekit

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// AppendJSONKey starts an object member: a comma unless the member is the
// first after the object's '{' at index start-1, then key, which the
// generator passes already quoted and followed by ':'.
//
//go:noinline
func AppendJSONKey(b []byte, start int, key string) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	return append(b, key...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string escaped as protojson escapes
// it: '"', '\\' and control characters only (\b \f \n \r \t, else \u00xx);
// '<', '>', '&', DEL and non-ASCII are written as they are. protojson
// refuses invalid UTF-8; envd's strings are valid UTF-8 by construction, so
// an invalid byte is written as U+FFFD rather than failing the encode.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\uFFFD"...)
				start = i + 1
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONBytes appends v as a JSON string of padded standard base64.
func AppendJSONBytes(b, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// AppendJSONInt64 appends a 64-bit integer as a quoted decimal (proto3 JSON
// keeps 64-bit values exact for JavaScript readers).
func AppendJSONInt64(b []byte, v int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, v, 10)
	return append(b, '"')
}

// AppendJSONUint64 appends a 64-bit unsigned integer as a quoted decimal.
func AppendJSONUint64(b []byte, v uint64) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

// AppendJSONEnum appends an enum value by name, or by number when name is
// empty (a value the schema does not know).
func AppendJSONEnum(b []byte, name string, v int32) []byte {
	if name == "" {
		return strconv.AppendInt(b, int64(v), 10)
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}
