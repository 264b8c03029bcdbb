package wirekit

import (
	"strings"
	"time"
)

// Timestamp is google.protobuf.Timestamp: seconds since the Unix epoch and
// non-negative nanoseconds within that second.
type Timestamp struct {
	Seconds int64
	Nanos   int32
}

// Bounds of a valid Timestamp: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// NewTimestamp converts t.
func NewTimestamp(t time.Time) *Timestamp {
	return &Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

// AsTime is the instant in UTC (the epoch for a nil Timestamp).
func (x *Timestamp) AsTime() time.Time {
	return time.Unix(x.GetSeconds(), int64(x.GetNanos())).UTC()
}

// GetSeconds is nil-safe.
func (x *Timestamp) GetSeconds() int64 {
	if x != nil {
		return x.Seconds
	}
	return 0
}

// GetNanos is nil-safe.
func (x *Timestamp) GetNanos() int32 {
	if x != nil {
		return x.Nanos
	}
	return 0
}

// Reset zeroes x.
func (x *Timestamp) Reset() { *x = Timestamp{} }

// SizeProto is the length of the binary encoding.
func (x *Timestamp) SizeProto() int {
	if x == nil {
		return 0
	}
	n := 0
	if x.Seconds != 0 {
		n += 1 + SizeVarint(uint64(x.Seconds))
	}
	if x.Nanos != 0 {
		n += 1 + SizeVarint(uint64(int64(x.Nanos)))
	}
	return n
}

// AppendProto appends the binary encoding.
func (x *Timestamp) AppendProto(b []byte) []byte {
	if x == nil {
		return b
	}
	if x.Seconds != 0 {
		b = AppendVarint(append(b, 0x08), uint64(x.Seconds))
	}
	if x.Nanos != 0 {
		b = AppendVarint(append(b, 0x10), uint64(int64(x.Nanos)))
	}
	return b
}

// UnmarshalProto resets x and decodes b.
func (x *Timestamp) UnmarshalProto(b []byte) error {
	*x = Timestamp{}
	return x.MergeProto(b)
}

// MergeProto decodes b into x without resetting it (a field seen twice).
func (x *Timestamp) MergeProto(b []byte) error {
	for len(b) > 0 {
		num, wt, n := ConsumeTag(b)
		if n < 0 {
			return ProtoError(n, "google.protobuf.Timestamp")
		}
		b = b[n:]
		if (num == 1 || num == 2) && wt == VarintType {
			v, n := ConsumeVarint(b)
			if n < 0 {
				return ProtoError(n, "google.protobuf.Timestamp")
			}
			if num == 1 {
				x.Seconds = int64(v)
			} else {
				x.Nanos = int32(v)
			}
			b = b[n:]
			continue
		}
		if n = SkipField(num, wt, b); n < 0 {
			return ProtoError(n, "google.protobuf.Timestamp")
		}
		b = b[n:]
	}
	return nil
}

// AppendProtoJSON appends the RFC 3339 string protojson writes: UTC, "Z",
// and 0, 3, 6 or 9 fractional digits. protojson refuses to encode an
// out-of-range Timestamp; this writes whatever time.Time formats instead.
func (x *Timestamp) AppendProtoJSON(b []byte) []byte {
	b = append(b, '"')
	b = x.AsTime().AppendFormat(b, "2006-01-02T15:04:05.000000000")
	if hasSuffix(b, "000") {
		b = b[:len(b)-3]
		if hasSuffix(b, "000") {
			b = b[:len(b)-3]
			if hasSuffix(b, ".000") {
				b = b[:len(b)-4]
			}
		}
	}
	return append(b, 'Z', '"')
}

func hasSuffix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[len(b)-len(s):]) == s
}

// UnmarshalProtoJSON resets x and decodes a JSON string.
func (x *Timestamp) UnmarshalProtoJSON(b []byte) error {
	*x = Timestamp{}
	d := NewJSONDecoder(b)
	if err := x.DecodeJSON(d); err != nil {
		return err
	}
	return d.End()
}

// DecodeJSON reads an RFC 3339 string with any offset and at most nine
// fractional digits, within the valid range.
func (x *Timestamp) DecodeJSON(d *JSONDecoder) error {
	s, err := d.String()
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return d.errorf("invalid google.protobuf.Timestamp %q", s)
	}
	secs := t.Unix()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds {
		return d.errorf("google.protobuf.Timestamp %q out of range", s)
	}
	dot, zone := strings.LastIndexByte(s, '.'), strings.LastIndexAny(s, "Z-+")
	if dot >= 0 && zone >= dot && zone-dot > len(".999999999") {
		return d.errorf("google.protobuf.Timestamp %q has more than nine fractional digits", s)
	}
	x.Seconds, x.Nanos = secs, int32(t.Nanosecond())
	return nil
}
