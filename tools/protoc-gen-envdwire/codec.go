package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// scalar is a proto scalar kind's Go type and wirekit Kind constant.
type scalar struct {
	goType string
	kind   string
}

var scalars = map[protoreflect.Kind]scalar{
	protoreflect.BoolKind:   {"bool", "KindBool"},
	protoreflect.Int32Kind:  {"int32", "KindInt32"},
	protoreflect.Sint32Kind: {"int32", "KindSint32"},
	protoreflect.Uint32Kind: {"uint32", "KindUint32"},
	protoreflect.Int64Kind:  {"int64", "KindInt64"},
	protoreflect.Sint64Kind: {"int64", "KindSint64"},
	protoreflect.Uint64Kind: {"uint64", "KindUint64"},
	protoreflect.StringKind: {"string", "KindString"},
	protoreflect.BytesKind:  {"[]byte", "KindBytes"},
}

// tableName is the wirekit.Message variable describing m.
func tableName(m *protogen.Message) string { return "msg" + m.GoIdent.GoName }

func enumTableName(e *protogen.Enum) string { return "enum" + e.GoIdent.GoName }

// jsonNames is a field's Names string for wirekit: its quoted JSON key and
// colon, then its proto name when that differs.
func jsonNames(fd *protogen.Field) (names string, keyLen int, err error) {
	name := fd.Desc.JSONName()
	for _, c := range name {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", 0, fmt.Errorf("field %s: JSON name %q needs escaping", fd.Desc.FullName(), name)
		}
	}
	key := `"` + name + `":`
	if len(key) > 255 {
		return "", 0, fmt.Errorf("field %s: JSON name too long", fd.Desc.FullName())
	}
	names = key
	if string(fd.Desc.Name()) != name {
		names += string(fd.Desc.Name())
	}
	return names, len(key), nil
}

// messageCodec emits m's wirekit table and the five codec methods, which
// hand the table to wirekit's table-driven encoders and decoders. The
// tables reference each other by address, so recursive messages would be
// an initialization cycle: envd has none, and the compiler would say so.
func (g *gen) messageCodec(m *protogen.Message, nested map[*protogen.Message]bool) error {
	name, table := m.GoIdent.GoName, tableName(m)
	unsafePtr := g.QualifiedGoIdent(protogen.GoIdent{GoName: "Pointer", GoImportPath: "unsafe"})
	offsetof := g.QualifiedGoIdent(protogen.GoIdent{GoName: "Offsetof", GoImportPath: "unsafe"})
	var oneofs []*protogen.Oneof
	for _, o := range m.Oneofs {
		if !o.Desc.IsSynthetic() {
			oneofs = append(oneofs, o)
		}
	}
	if len(m.Fields) > 64 || len(oneofs) > 64 {
		return fmt.Errorf("message %s: more than 64 fields or oneofs", m.Desc.FullName())
	}
	g.P("var ", table, " = ", g.kitName("Message"), "{")
	g.P("Name: ", strconv.Quote(string(m.Desc.FullName())), ",")
	if len(m.Fields) > 0 {
		g.P("Fields: []", g.kitName("Field"), "{")
		for _, fd := range m.Fields {
			if err := g.fieldEntry(m, fd, oneofs, offsetof, unsafePtr); err != nil {
				return err
			}
		}
		g.P("},")
	}
	byNum := slices.Clone(m.Fields)
	slices.SortStableFunc(byNum, func(a, b *protogen.Field) int { return int(a.Desc.Number() - b.Desc.Number()) })
	if !slices.Equal(byNum, m.Fields) {
		idx := make([]string, len(byNum))
		for i, fd := range byNum {
			idx[i] = strconv.Itoa(slices.Index(m.Fields, fd))
		}
		g.P("Order: []uint8{", join(idx), "},")
	}
	if len(oneofs) > 0 {
		names := make([]string, len(oneofs))
		for i, o := range oneofs {
			names[i] = strconv.Quote(string(o.Desc.FullName()))
		}
		g.P("Oneofs: []string{", join(names), "},")
	}
	if nested[m] {
		g.P("New: func() ", unsafePtr, " { return ", unsafePtr, "(new(", name, ")) },")
	}
	g.P("}")
	g.P()
	ptr := unsafePtr + "(x), &" + table
	g.P("// SizeProto is the length of the binary encoding.")
	g.P("func (x *", name, ") SizeProto() int { return ", g.kitName("SizeMessage"), "(", ptr, ") }")
	g.P()
	g.P("// AppendProto appends the binary encoding (fields in number order, map")
	g.P("// entries by key) to b.")
	g.P("func (x *", name, ") AppendProto(b []byte) []byte { return ", g.kitName("AppendMessage"), "(b, ", ptr, ") }")
	g.P()
	g.P("// UnmarshalProto resets x and decodes b, skipping unknown fields.")
	g.P("func (x *", name, ") UnmarshalProto(b []byte) error { return ", g.kitName("UnmarshalMessage"), "(b, ", ptr, ") }")
	g.P()
	g.P("// AppendProtoJSON appends the proto3 JSON protojson writes (declaration")
	g.P("// order, zero values omitted) to b.")
	g.P("func (x *", name, ") AppendProtoJSON(b []byte) []byte { return ", g.kitName("AppendMessageJSON"), "(b, ", ptr, ") }")
	g.P()
	g.P("// UnmarshalProtoJSON resets x and decodes proto3 JSON as protojson does")
	g.P("// with DiscardUnknown.")
	g.P("func (x *", name, ") UnmarshalProtoJSON(b []byte) error { return ", g.kitName("UnmarshalMessageJSON"), "(b, ", ptr, ") }")
	g.P()
	return nil
}

// join lists generated literals: "a, b, c".
func join(s []string) string { return strings.Join(s, ", ") }

// fieldEntry emits fd's wirekit.Field.
func (g *gen) fieldEntry(m *protogen.Message, fd *protogen.Field, oneofs []*protogen.Oneof, offsetof, unsafePtr string) error {
	names, keyLen, err := jsonNames(fd)
	if err != nil {
		return err
	}
	o := realOneof(fd)
	goField := fd.GoName
	if o != nil {
		goField = o.GoName
	}
	vf := fd // the field whose kind the values have
	card := "Implicit"
	switch {
	case fd.Desc.IsMap():
		k, v := fd.Message.Fields[0].Desc.Kind(), fd.Message.Fields[1].Desc.Kind()
		if k != protoreflect.StringKind || v != protoreflect.StringKind {
			return fmt.Errorf("field %s: only map<string, string> is supported", fd.Desc.FullName())
		}
		card, vf = "Map", nil
	case fd.Desc.IsList():
		switch fd.Desc.Kind() {
		case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		default:
			return fmt.Errorf("field %s: repeated %v is not supported", fd.Desc.FullName(), fd.Desc.Kind())
		}
		card = "List"
	case o != nil:
		card = "Member"
	case isPointerScalar(fd):
		card = "Optional"
	}
	kind, ref := "KindBytes", "" // a map entry is a length-delimited payload
	if vf != nil {
		switch vf.Desc.Kind() {
		case protoreflect.MessageKind:
			if vf.Message.Desc.FullName() == timestampName {
				kind = "KindTimestamp"
			} else {
				if _, err := g.msgIdent(vf.Message); err != nil {
					return err
				}
				kind, ref = "KindMessage", "Msg: &"+tableName(vf.Message)+", "
			}
		case protoreflect.EnumKind:
			if _, err := g.enumIdent(vf.Enum); err != nil {
				return err
			}
			kind, ref = "KindEnum", "Enum: &"+enumTableName(vf.Enum)+", "
		default:
			s, ok := scalars[vf.Desc.Kind()]
			if !ok {
				return fmt.Errorf("field %s: kind %v is not supported", fd.Desc.FullName(), fd.Desc.Kind())
			}
			kind = s.kind
		}
	}
	line := fmt.Sprintf("{Num: %d, Off: uint16(%s(%s{}.%s)), Kind: %s, Card: %s, KeyLen: %d, Names: %s, %s",
		fd.Desc.Number(), offsetof, m.GoIdent.GoName, goField, g.kitName(kind), g.kitName(card), keyLen, strconv.Quote(names), ref)
	if o == nil {
		g.P(line, "},")
		return nil
	}
	g.P(line, "OneofN: ", slices.Index(oneofs, o), ",")
	g.P("Oneof: func(p ", unsafePtr, ", set bool) ", unsafePtr, " {")
	g.P("x := (*", m.GoIdent.GoName, ")(p)")
	g.P("if set {")
	g.P("o := new(", fd.GoIdent.GoName, ")")
	g.P("x.", o.GoName, " = o")
	g.P("return ", unsafePtr, "(&o.", fd.GoName, ")")
	g.P("}")
	g.P("if o, ok := x.", o.GoName, ".(*", fd.GoIdent.GoName, "); ok && o != nil {")
	g.P("return ", unsafePtr, "(&o.", fd.GoName, ")")
	g.P("}")
	g.P("return nil")
	g.P("}},")
	return nil
}
