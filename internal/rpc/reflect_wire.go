package rpc

import (
	"errors"
	"unicode/utf8"

	"github.com/sandboxd/envd/internal/wirekit"
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
		num, typ, n := wirekit.ConsumeTag(b)
		if n < 0 {
			return errors.New("malformed reflection request")
		}
		b = b[n:]
		if typ == 2 {
			v, n := wirekit.ConsumeBytes(b)
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
		if n = wirekit.SkipField(num, typ, b); n < 0 {
			return errors.New("malformed reflection request")
		}
		b = b[n:]
	}
	return nil
}

// extensionContainingType reads ExtensionRequest.containing_type (1).
func extensionContainingType(b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := wirekit.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if typ == 2 {
			v, n := wirekit.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			if num == 1 {
				return v
			}
			b = b[n:]
			continue
		}
		if n = wirekit.SkipField(num, typ, b); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

func (m *reflectResponse) AppendProto(b []byte) []byte {
	if m.host != "" {
		b = wirekit.AppendBytesField(b, 1<<3|2, []byte(m.host))
	}
	b = wirekit.AppendBytesField(b, 2<<3|2, m.original)
	var sub []byte
	switch {
	case m.errCode != 0:
		sub = wirekit.AppendVarintField(nil, 1<<3, uint64(m.errCode))
		sub = wirekit.AppendBytesField(sub, 2<<3|2, []byte(m.errMsg))
		return wirekit.AppendBytesField(b, 7<<3|2, sub)
	case m.files != nil:
		for _, f := range m.files {
			sub = wirekit.AppendBytesField(sub, 1<<3|2, f)
		}
		return wirekit.AppendBytesField(b, 4<<3|2, sub)
	case m.extList:
		return wirekit.AppendBytesField(b, 5<<3|2, wirekit.AppendBytesField(nil, 1<<3|2, []byte(m.extBase)))
	}
	for _, s := range m.services {
		sub = wirekit.AppendBytesField(sub, 1<<3|2, wirekit.AppendBytesField(nil, 1<<3|2, []byte(s)))
	}
	return wirekit.AppendBytesField(b, 6<<3|2, sub)
}
