package server

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
)

// filesystemHandlerOptions apply to the filesystem service only:
//   - gzip only messages of 1 KiB or more: clients accept gzip by default,
//     and compressing a 300-byte Stat answer costs more than the rest of the
//     request (a fresh deflate state per message);
//   - the JSON codec writes entry answers directly: protojson's
//     reflection costs ~5 µs per entry, most of a 10,000-entry listing.
var filesystemHandlerOptions = connect.WithHandlerOptions(
	connect.WithCompressMinBytes(1024),
	connect.WithCodec(fsJSONCodec{name: "json"}),
	connect.WithCodec(fsJSONCodec{name: "json; charset=utf-8"}),
)

// fsJSONCodec is connect-go's JSON codec with a fast path for the answers
// that carry entries (ListDir, Stat, MakeDir, Move). The output is proto3 canonical JSON, as protojson
// writes it (field order, omitted zero values, int64 as strings, enum
// names, RFC 3339 timestamps with 0/3/6/9 fractional digits).
type fsJSONCodec struct{ name string }

func (c fsJSONCodec) Name() string { return c.name }

func (c fsJSONCodec) IsBinary() bool { return false }

func (c fsJSONCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

func (c fsJSONCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	switch r := m.(type) {
	case *fspb.ListDirResponse:
		return appendListDirJSON(dst, r), nil
	case *fspb.StatResponse:
		return appendEntryResponseJSON(dst, r.Entry), nil
	case *fspb.MakeDirResponse:
		return appendEntryResponseJSON(dst, r.Entry), nil
	case *fspb.MoveResponse:
		return appendEntryResponseJSON(dst, r.Entry), nil
	}
	return protoJSONAppend(dst, m)
}

func (c fsJSONCodec) Unmarshal(b []byte, m any) error { return protoJSONUnmarshal(b, m) }

func appendListDirJSON(b []byte, ls *fspb.ListDirResponse) []byte {
	if len(ls.Entries) == 0 {
		return append(b, "{}"...)
	}
	b = append(b, `{"entries":[`...)
	for i, e := range ls.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntryJSON(b, e)
	}
	return append(b, "]}"...)
}

// appendEntryResponseJSON writes {"entry":{...}}, the shape of Stat,
// MakeDir and Move answers.
func appendEntryResponseJSON(b []byte, e *fspb.EntryInfo) []byte {
	if e == nil {
		return append(b, "{}"...)
	}
	return append(appendEntryJSON(append(b, `{"entry":`...), e), '}')
}

func appendEntryJSON(b []byte, e *fspb.EntryInfo) []byte {
	b = append(b, '{')
	n := len(b)
	key := func(b []byte, k string) []byte {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		return append(b, '"', ':')
	}
	if e.Name != "" {
		b = appendJSONString(key(b, "name"), e.Name)
	}
	if e.Type != 0 {
		b = appendJSONString(key(b, "type"), e.Type.String())
	}
	if e.Path != "" {
		b = appendJSONString(key(b, "path"), e.Path)
	}
	if e.Size != 0 {
		b = append(strconv.AppendInt(append(key(b, "size"), '"'), e.Size, 10), '"')
	}
	if e.Mode != 0 {
		b = strconv.AppendUint(key(b, "mode"), uint64(e.Mode), 10)
	}
	if e.Permissions != "" {
		b = appendJSONString(key(b, "permissions"), e.Permissions)
	}
	if e.Owner != "" {
		b = appendJSONString(key(b, "owner"), e.Owner)
	}
	if e.Group != "" {
		b = appendJSONString(key(b, "group"), e.Group)
	}
	if ts := e.ModifiedTime; ts != nil {
		b = append(key(b, "modifiedTime"), '"')
		b = appendTimestamp(b, time.Unix(ts.Seconds, int64(ts.Nanos)).UTC())
		b = append(b, '"')
	}
	if e.SymlinkTarget != nil {
		b = appendJSONString(key(b, "symlinkTarget"), *e.SymlinkTarget)
	}
	if len(e.Metadata) > 0 {
		b = append(key(b, "metadata"), '{')
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = appendJSONString(append(b, ':'), e.Metadata[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendTimestamp writes t as protojson does: RFC 3339 in UTC with 0, 3, 6
// or 9 fractional digits and a Z.
func appendTimestamp(b []byte, t time.Time) []byte {
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		for digits > 3 && ns%1000 == 0 {
			ns /= 1000
			digits -= 3
		}
		b = append(b, '.')
		s := strconv.Itoa(ns)
		for range digits - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return append(b, 'Z')
}

// appendJSONString quotes s. Strings reaching here are valid UTF-8 (wire
// conversion repairs them), so only quotes, backslashes and control
// characters need escaping.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validUTF8 repairs a name for the wire: proto3 strings must be valid
// UTF-8, and one odd file name must not fail a whole listing. Invalid
// bytes become U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s)) // each invalid byte decodes to U+FFFD
}
