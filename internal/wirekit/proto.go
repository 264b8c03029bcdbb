// Package wirekit is the runtime of the code tools/protoc-gen-envdwire
// generates: protobuf binary and proto3 JSON primitives and the
// google.protobuf.Timestamp type, so the daemon's messages encode and decode
// themselves without linking google.golang.org/protobuf.
//
// Binary decoding follows protobuf-go: a known field that arrives with an
// unexpected wire type is skipped like an unknown field, and proto3 strings
// must be valid UTF-8. JSON decoding follows protojson with DiscardUnknown,
// except that syntax is strict RFC 8259 where protojson is lax (it takes
// "0e}" as a number). JSON encoding writes U+FFFD for invalid UTF-8, which
// protojson refuses to encode.
package wirekit

import (
	"errors"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// Wire types.
const (
	VarintType     = 0
	Fixed64Type    = 1
	BytesType      = 2
	StartGroupType = 3
	EndGroupType   = 4
	Fixed32Type    = 5
)

// Negative lengths returned by the Consume functions; ProtoError turns them
// into errors.
const (
	errTruncated   = -1
	errOverflow    = -2
	errFieldNumber = -3
	errWireType    = -4
	errEndGroup    = -5
	errUTF8        = -6
	errDepth       = -7
)

const maxFieldNumber = 1<<29 - 1

// maxGroupDepth bounds the nesting of skipped groups (protobuf-go's
// recursion limit).
const maxGroupDepth = 10000

var protoErrs = [...]error{
	-errTruncated:   errors.New("truncated input"),
	-errOverflow:    errors.New("varint overflows 64 bits"),
	-errFieldNumber: errors.New("invalid field number"),
	-errWireType:    errors.New("invalid wire type"),
	-errEndGroup:    errors.New("mismatched end group"),
	-errUTF8:        errors.New("string field contains invalid UTF-8"),
	-errDepth:       errors.New("groups nested too deeply"),
}

// ProtoError is the error for a negative length n returned by a Consume
// function while decoding msg (a full message or field name).
func ProtoError(n int, msg string) error {
	if n >= 0 || -n >= len(protoErrs) || protoErrs[-n] == nil {
		return errors.New("proto: " + msg + ": decode error")
	}
	return errors.New("proto: " + msg + ": " + protoErrs[-n].Error())
}

// AppendVarint appends v as a base-128 varint. Not inlined: generated code
// calls it at every field, and binary size matters more than a call.
//
//go:noinline
func AppendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// SizeVarint is the encoded length of v.
func SizeVarint(v uint64) int {
	// ceil(bits/7), and 1 for zero.
	return int(9*uint32(bits.Len64(v))+64) / 64
}

// SizeBytes is the encoded length of a length-delimited payload of n bytes
// (without its tag).
func SizeBytes(n int) int { return SizeVarint(uint64(n)) + n }

// EncodeZigZag maps signed to unsigned so small magnitudes stay short.
func EncodeZigZag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// DecodeZigZag inverts EncodeZigZag.
func DecodeZigZag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

// DecodeZigZag32 decodes a sint32 from its (possibly sign-extended) varint,
// looking only at the low 32 bits as protobuf-go does.
func DecodeZigZag32(v uint64) int32 { return int32(DecodeZigZag(v & math.MaxUint32)) }

// ConsumeVarint decodes a varint; n < 0 reports truncation or overflow.
func ConsumeVarint(b []byte) (v uint64, n int) {
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, errTruncated
		}
		c := b[i]
		if i == 9 && c > 1 {
			return 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, errOverflow
}

// ConsumeTag decodes a field tag of a message (numbers 1 to 2^29-1).
func ConsumeTag(b []byte) (num int32, wt int, n int) {
	v, n := ConsumeVarint(b)
	if n < 0 {
		return 0, 0, n
	}
	if v>>3 == 0 || v>>3 > maxFieldNumber {
		return 0, 0, errFieldNumber
	}
	return int32(v >> 3), int(v & 7), n
}

// ConsumeBytes decodes a length-delimited payload, aliasing b.
func ConsumeBytes(b []byte) (v []byte, n int) {
	l, n := ConsumeVarint(b)
	if n < 0 {
		return nil, n
	}
	if l > uint64(len(b)-n) {
		return nil, errTruncated
	}
	return b[n : n+int(l)], n + int(l)
}

// ConsumeString decodes a length-delimited proto3 string, which must be
// valid UTF-8.
func ConsumeString(b []byte) (v string, n int) {
	p, n := ConsumeBytes(b)
	if n < 0 {
		return "", n
	}
	if !utf8.Valid(p) {
		return "", errUTF8
	}
	return string(p), n
}

// CloneBytes copies a decoded payload so the message does not alias the
// input buffer.
func CloneBytes(v []byte) []byte { return append([]byte{}, v...) }

// SkipField consumes the value of field num with wire type wt (unknown
// fields, and known fields sent with another wire type).
func SkipField(num int32, wt int, b []byte) int { return skipField(num, wt, b, maxGroupDepth) }

func skipField(num int32, wt int, b []byte, depth int) int {
	switch wt {
	case VarintType:
		_, n := ConsumeVarint(b)
		return n
	case Fixed64Type:
		if len(b) < 8 {
			return errTruncated
		}
		return 8
	case Fixed32Type:
		if len(b) < 4 {
			return errTruncated
		}
		return 4
	case BytesType:
		_, n := ConsumeBytes(b)
		return n
	case StartGroupType:
		if depth < 0 {
			return errDepth
		}
		n0 := len(b)
		for {
			v, n := ConsumeVarint(b)
			if n < 0 {
				return n
			}
			// Inside a group protobuf-go accepts any number up to MaxInt32.
			if v>>3 == 0 || v>>3 > math.MaxInt32 {
				return errFieldNumber
			}
			b = b[n:]
			num2, wt2 := int32(v>>3), int(v&7)
			if wt2 == EndGroupType {
				if num2 != num {
					return errEndGroup
				}
				return n0 - len(b)
			}
			n = skipField(num2, wt2, b, depth-1)
			if n < 0 {
				return n
			}
			b = b[n:]
		}
	case EndGroupType:
		return errEndGroup
	}
	return errWireType
}

// Grow makes room for n more bytes (one allocation for a whole message).
//
//go:noinline
func Grow(b []byte, n int) []byte { return slices.Grow(b, n) }

// BoolVarint is v's varint value.
func BoolVarint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// AppendVarintField appends a tag (field number << 3 | wire type) and a
// varint value.
//
//go:noinline
func AppendVarintField(b []byte, tag, v uint64) []byte {
	return AppendVarint(AppendVarint(b, tag), v)
}

// AppendStringField appends a tag and a length-delimited string.
func AppendStringField(b []byte, tag uint64, v string) []byte {
	return append(AppendVarint(AppendVarint(b, tag), uint64(len(v))), v...)
}

// AppendBytesField appends a tag and a length-delimited payload.
func AppendBytesField(b []byte, tag uint64, v []byte) []byte {
	return append(AppendVarint(AppendVarint(b, tag), uint64(len(v))), v...)
}

// SortedKeys is m's keys in ascending order: deterministic map encoding,
// as protobuf-go's Deterministic option and protojson produce.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
