package rpc

import (
	"errors"
	"unicode/utf8"
)

// The reflection messages (grpc.reflection.v1, same numbers in v1alpha),
// encoded by hand: binary only, which is all reflection clients use.

type reflectKind uint8

const (
	reqNone             reflectKind = iota
	reqFileByName                   // 3: file_by_filename
	reqFileBySymbol                 // 4: file_containing_symbol
	reqFileByExtension              // 5: file_containing_extension
	reqExtensionNumbers             // 6: all_extension_numbers_of_type
	reqListServices                 // 7: list_services
)

type reflectRequest struct {
	raw  []byte // echoed as original_request
	host string
	kind reflectKind
	arg  string
}

type reflectResponse struct {
	host     string
	original []byte
	files    [][]byte
	services []string
	extBase  string
	extList  bool
	errCode  Code
	errMsg   string
}

var errNoJSON = errors.New("gRPC reflection supports the binary codec only")

func (m *reflectRequest) AppendProtoJSON(b []byte) []byte  { return append(b, "{}"...) }
func (m *reflectRequest) UnmarshalProtoJSON([]byte) error  { return errNoJSON }
func (m *reflectResponse) AppendProtoJSON(b []byte) []byte { return append(b, "{}"...) }
func (m *reflectResponse) UnmarshalProtoJSON([]byte) error { return errNoJSON }
func (m *reflectResponse) UnmarshalProto([]byte) error {
	return errors.New("rpc: reflection responses are never received")
}
func (m *reflectRequest) AppendProto(b []byte) []byte { return append(b, m.raw...) }

func (m *reflectRequest) UnmarshalProto(b []byte) error {
	*m = reflectRequest{raw: append([]byte(nil), b...)}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errors.New("malformed reflection request")
		}
		b = b[n:]
		if typ == 2 {
			v, n := consumeBytes(b)
			if n < 0 {
				return errors.New("malformed reflection request")
			}
			b = b[n:]
			switch {
			case num == 1:
				m.host = string(v)
			case num >= 3 && num <= 7:
				if num == 5 {
					v = extensionContainingType(v)
				}
				if !utf8.Valid(v) {
					return errors.New("reflection request: string field contains invalid UTF-8")
				}
				m.kind, m.arg = reflectKind(num-2), string(v)
			}
			continue
		}
		if n = skipField(b, typ); n < 0 {
			return errors.New("malformed reflection request")
		}
		b = b[n:]
	}
	return nil
}

// extensionContainingType reads ExtensionRequest.containing_type (1).
func extensionContainingType(b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if typ == 2 {
			v, n := consumeBytes(b)
			if n < 0 {
				return nil
			}
			if num == 1 {
				return v
			}
			b = b[n:]
			continue
		}
		if n = skipField(b, typ); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

func (m *reflectResponse) AppendProto(b []byte) []byte {
	if m.host != "" {
		b = appendBytesField(b, 1, []byte(m.host))
	}
	b = appendBytesField(b, 2, m.original)
	var sub []byte
	switch {
	case m.errCode != 0:
		sub = appendVarintField(nil, 1, uint64(m.errCode))
		sub = appendBytesField(sub, 2, []byte(m.errMsg))
		return appendBytesField(b, 7, sub)
	case m.files != nil:
		for _, f := range m.files {
			sub = appendBytesField(sub, 1, f)
		}
		return appendBytesField(b, 4, sub)
	case m.extList:
		return appendBytesField(b, 5, appendBytesField(nil, 1, []byte(m.extBase)))
	}
	for _, s := range m.services {
		sub = appendBytesField(sub, 1, appendBytesField(nil, 1, []byte(s)))
	}
	return appendBytesField(b, 6, sub)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarintField(b []byte, num int, v uint64) []byte {
	return appendVarint(appendVarint(b, uint64(num)<<3), v)
}

func appendBytesField(b []byte, num int, v []byte) []byte {
	b = appendVarint(appendVarint(b, uint64(num)<<3|2), uint64(len(v)))
	return append(b, v...)
}

// consumeVarint returns the value and its length, -1 when malformed.
func consumeVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

func consumeTag(b []byte) (num int, typ int, n int) {
	v, n := consumeVarint(b)
	if n < 0 || v>>3 == 0 || v>>3 > 1<<29-1 {
		return 0, 0, -1
	}
	return int(v >> 3), int(v & 7), n
}

func consumeBytes(b []byte) ([]byte, int) {
	l, n := consumeVarint(b)
	if n < 0 || l > uint64(len(b)-n) {
		return nil, -1
	}
	return b[n : n+int(l)], n + int(l)
}

// skipField skips one value of wire type typ (no groups).
func skipField(b []byte, typ int) int {
	switch typ {
	case 0:
		_, n := consumeVarint(b)
		return n
	case 1:
		if len(b) < 8 {
			return -1
		}
		return 8
	case 2:
		_, n := consumeBytes(b)
		return n
	case 5:
		if len(b) < 4 {
			return -1
		}
		return 4
	}
	return -1
}
