package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	fs "github.com/sandboxd/envd/internal/gen/filesystem"
	fw "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	ps "github.com/sandboxd/envd/internal/gen/process"
	pw "github.com/sandboxd/envd/internal/gen/process/processwire"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

func marshalPB(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := deterministic.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendProtoMatchesProtobufGo(t *testing.T) {
	for _, c := range allPairs() {
		want := marshalPB(t, c.pb)
		if got := c.wire.AppendProto(nil); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, got, want)
		}
		prefix := []byte("prefix")
		if got := c.wire.AppendProto(prefix); !bytes.Equal(got, append(prefix, want...)) {
			t.Errorf("%s: AppendProto does not append after existing bytes", c.name)
		}
		if n := c.wire.(interface{ SizeProto() int }).SizeProto(); n != len(want) {
			t.Errorf("%s: SizeProto = %d, want %d", c.name, n, len(want))
		}
	}
}

func TestUnmarshalProtoRoundTrip(t *testing.T) {
	for _, c := range allPairs() {
		want := marshalPB(t, c.pb)
		w := fresh(c.wire)
		if err := w.UnmarshalProto(want); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := w.AppendProto(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: re-encoded\n got %x\nwant %x", c.name, got, want)
		}
		back := freshPB(c.pb)
		if err := proto.Unmarshal(got, back); err != nil || !proto.Equal(back, c.pb) {
			t.Errorf("%s: protobuf-go reads back %v (err %v), want %v", c.name, back, err, c.pb)
		}
		// Decoding resets: an empty input leaves an empty message.
		if err := w.UnmarshalProto(nil); err != nil || len(w.AppendProto(nil)) != 0 {
			t.Errorf("%s: UnmarshalProto(nil) kept fields (err %v)", c.name, err)
		}
	}
}

// agree decodes b with both implementations: both fail, or both succeed
// with equal results.
func agree(t *testing.T, name string, pb proto.Message, wire message, b []byte) (ok bool) {
	t.Helper()
	p, w := freshPB(pb), fresh(wire)
	perr, werr := proto.Unmarshal(b, p), w.UnmarshalProto(b)
	if (perr == nil) != (werr == nil) {
		t.Errorf("%s: input %x: protobuf-go err %v, wire err %v", name, b, perr, werr)
		return false
	}
	if perr != nil {
		return false
	}
	back := freshPB(pb)
	if err := proto.Unmarshal(w.AppendProto(nil), back); err != nil {
		t.Errorf("%s: input %x: re-encoding unreadable: %v", name, b, err)
		return false
	}
	// protobuf-go keeps unknown fields; compare with them dropped.
	p.ProtoReflect().SetUnknown(nil)
	dropUnknown(p)
	if !proto.Equal(back, p) {
		t.Errorf("%s: input %x: wire decoded %v, protobuf-go %v", name, b, back, p)
		return false
	}
	return true
}

func dropUnknown(m proto.Message) {
	b, _ := deterministic.Marshal(m)
	proto.Reset(m)
	_ = proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
}

func TestTruncatedInputAgrees(t *testing.T) {
	for _, c := range allPairs() {
		b := marshalPB(t, c.pb)
		for i := range len(b) {
			agree(t, c.name, c.pb, c.wire, b[:i])
		}
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	var unknown []byte
	unknown = protowire.AppendTag(unknown, 100, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1<<63)
	unknown = protowire.AppendTag(unknown, 101, protowire.Fixed32Type)
	unknown = protowire.AppendFixed32(unknown, 7)
	unknown = protowire.AppendTag(unknown, 102, protowire.Fixed64Type)
	unknown = protowire.AppendFixed64(unknown, 7)
	unknown = protowire.AppendTag(unknown, 103, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("skip me"))
	unknown = protowire.AppendTag(unknown, 104, protowire.StartGroupType)
	unknown = protowire.AppendTag(unknown, 1, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 5)
	unknown = protowire.AppendTag(unknown, 105, protowire.StartGroupType)
	unknown = protowire.AppendTag(unknown, 105, protowire.EndGroupType)
	unknown = protowire.AppendTag(unknown, 104, protowire.EndGroupType)
	unknown = protowire.AppendTag(unknown, 1<<29-1, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, nil)
	for _, c := range allPairs() {
		want := marshalPB(t, c.pb)
		for _, in := range [][]byte{append(bytes.Clone(unknown), want...), append(bytes.Clone(want), unknown...)} {
			w := fresh(c.wire)
			if err := w.UnmarshalProto(in); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := w.AppendProto(nil); !bytes.Equal(got, want) {
				t.Errorf("%s: with unknown fields\n got %x\nwant %x", c.name, got, want)
			}
			agree(t, c.name, c.pb, c.wire, in)
		}
	}
}

func field(num protowire.Number, typ protowire.Type, payload ...byte) []byte {
	return append(protowire.AppendTag(nil, num, typ), payload...)
}

func lenField(num protowire.Number, payload ...byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), payload)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMalformedInput(t *testing.T) {
	cfg, cfgW := &ps.ProcessConfig{}, &pw.ProcessConfig{}
	entry := func(k, v []byte) []byte { return lenField(3, cat(lenField(1, k...), lenField(2, v...))...) }
	for _, c := range []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"invalid utf8 string", lenField(1, 0xff, 'a'), true},
		{"invalid utf8 repeated", lenField(2, 'a', 0xc3), true},
		{"invalid utf8 map key", entry([]byte{0xed, 0xa0, 0x80}, nil), true},
		{"invalid utf8 map value", entry([]byte("k"), []byte{0xfe}), true},
		{"invalid utf8 optional", lenField(4, 0x80), true},
		{"varint overflow", field(100, protowire.VarintType, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), true},
		{"varint eleven bytes", field(100, protowire.VarintType, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), true},
		{"varint max", field(100, protowire.VarintType, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), false},
		{"field number zero", []byte{0x02, 0x00}, true},
		{"field number too large", protowire.AppendVarint(nil, uint64(1<<29)<<3), true},
		{"wire type 6", []byte{0x0e}, true},
		{"wire type 7", []byte{0x0f, 0x00}, true},
		{"lone end group", field(5, protowire.EndGroupType), true},
		{"unterminated group", field(5, protowire.StartGroupType), true},
		{"mismatched end group", cat(field(5, protowire.StartGroupType), field(6, protowire.EndGroupType)), true},
		{"length past end", []byte{0x0a, 0x05, 'a'}, true},
		{"huge length", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, true},
		{"truncated fixed64", field(9, protowire.Fixed64Type, 1, 2, 3), true},
		{"string as varint is skipped", field(1, protowire.VarintType, 5), false},
		{"map entry with unknown and missing value", lenField(3, cat(field(9, protowire.VarintType, 1), lenField(1, 'k'))...), false},
		{"map entry empty", lenField(3), false},
		{"map entry bad inner", lenField(3, 0x0a, 0x09), true},
	} {
		if ok := agree(t, c.name, cfg, cfgW, c.in); !c.wantErr && !ok {
			t.Errorf("%s: expected success", c.name)
		}
		if err := fresh(cfgW).UnmarshalProto(c.in); (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.name, err, c.wantErr)
		}
	}
	// Errors deep inside nested messages surface too.
	for _, c := range []struct {
		name string
		pb   proto.Message
		wire message
		in   []byte
	}{
		{"truncated bytes in oneof", &ps.StartResponse{}, &pw.StartResponse{}, lenField(1, lenField(2, 0x0a, 0x05, 'a')...)},
		{"truncated timestamp", &fs.StatResponse{}, &fw.StatResponse{}, lenField(1, lenField(9, 0x08, 0xff)...)},
		{"bad utf8 in repeated message", &ps.ListResponse{}, &pw.ListResponse{}, lenField(1, lenField(1, lenField(1, 0xff)...)...)},
	} {
		if agree(t, c.name, c.pb, c.wire, c.in) {
			t.Errorf("%s: decoded", c.name)
		}
		if err := fresh(c.wire).UnmarshalProto(c.in); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	w := &pw.UpdateRequest{}
	if err := w.UnmarshalProto(lenField(1, lenField(2, 0xc0, 0x80)...)); err == nil {
		t.Error("invalid UTF-8 in a nested oneof string: no error")
	}
}

func TestRepeatedFieldsMergeLikeProtobufGo(t *testing.T) {
	cases := []struct {
		name string
		pb   proto.Message
		wire message
		in   []byte
	}{
		{"message twice merges", &ps.StartRequest{}, &pw.StartRequest{},
			cat(lenField(1, lenField(1, 'a')...), lenField(1, lenField(2, 'b')...), lenField(1, lenField(1, 'c')...))},
		{"oneof message twice merges", &ps.ProcessEvent{}, &pw.ProcessEvent{},
			cat(lenField(3, field(1, protowire.VarintType, 3)...), lenField(3, lenField(3, 'x')...))},
		{"other oneof member replaces", &ps.ProcessEvent{}, &pw.ProcessEvent{},
			cat(lenField(1, field(1, protowire.VarintType, 3)...), lenField(2, lenField(2, 'e')...))},
		{"oneof scalar last wins", &ps.ProcessSelector{}, &pw.ProcessSelector{},
			cat(field(1, protowire.VarintType, 3), lenField(2, 't'), field(1, protowire.VarintType, 4))},
		{"optional last wins", &ps.StartRequest{}, &pw.StartRequest{},
			cat(field(4, protowire.VarintType, 1), field(4, protowire.VarintType, 0), lenField(3, 'a'), lenField(3))},
		{"repeated appends and map key repeats", &ps.ProcessConfig{}, &pw.ProcessConfig{},
			cat(lenField(2, 'a'), lenField(3, cat(lenField(1, 'k'), lenField(2, '1'))...), lenField(2, 'b'),
				lenField(3, cat(lenField(1, 'k'), lenField(2, '2'))...))},
		{"sint32 sign-extended and int64 negative", &ps.ProcessEvent_EndEvent{}, &pw.ProcessEvent_EndEvent{},
			cat(field(1, protowire.VarintType, protowire.AppendVarint(nil, 1<<63|3)...), field(2, protowire.VarintType, 2))},
		{"uint32 truncates", &ps.ProcessEvent_StartEvent{}, &pw.ProcessEvent_StartEvent{},
			field(1, protowire.VarintType, protowire.AppendVarint(nil, 1<<40|5)...)},
		{"repeated messages and timestamp merge", &ps.ListResponse{}, &pw.ListResponse{},
			cat(lenField(1, lenField(1, lenField(1, 'a')...)...), lenField(1))},
	}
	for _, c := range cases {
		if !agree(t, c.name, c.pb, c.wire, c.in) {
			t.Errorf("%s: expected both to decode", c.name)
		}
	}
}
