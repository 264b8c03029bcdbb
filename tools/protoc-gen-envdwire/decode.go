package main

import (
	"strconv"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func mergeMethod(m *protogen.Message) string {
	if m.Desc.FullName() == timestampName {
		return "MergeProto"
	}
	return "mergeProto"
}

// mergeProto emits the binary decoder: one switch case per known field
// and wire type; anything else (unknown fields, and known fields sent with
// another wire type, as protobuf-go treats them) is skipped. Cases store
// before checking err: on error the message is discarded anyway.
func (g *gen) mergeProto(m *protogen.Message, fields []*protogen.Field) error {
	name := m.GoIdent.GoName
	full := strconv.Quote(string(m.Desc.FullName()))
	g.P("func (x *", name, ") mergeProto(b []byte) (err error) {")
	g.P("var num int32")
	g.P("var wt int")
	g.P("for len(b) > 0 {")
	g.P("if num, wt, b, err = ", g.k("K.ReadTag"), "(b, ", full, "); err != nil {")
	g.P("return err")
	g.P("}")
	g.P("switch {")
	var maps []*protogen.Field
	for _, fd := range fields {
		if fd.Desc.IsMap() {
			maps = append(maps, fd)
			g.P("case num == ", fd.Desc.Number(), " && wt == 2:")
			g.P("var v []byte")
			g.P("if v, b, err = ", g.k("K.ReadBytes"), "(b, ", strconv.Quote(string(fd.Desc.FullName())), "); err == nil {")
			g.P("err = x.merge", fd.GoName, "Entry(v)")
			g.P("}")
			continue
		}
		if err := g.fieldDecode(fd); err != nil {
			return err
		}
	}
	g.P("default:")
	g.P("b, err = ", g.k("K.Skip"), "(num, wt, b, ", full, ")")
	g.P("}")
	g.P("if err != nil {")
	g.P("return err")
	g.P("}")
	g.P("}")
	g.P("return nil")
	g.P("}")
	g.P()
	for _, fd := range maps {
		if err := g.mapEntryDecode(m, fd); err != nil {
			return err
		}
	}
	return nil
}

// fieldDecode emits the switch case that decodes fd from b.
func (g *gen) fieldDecode(fd *protogen.Field) error {
	c, err := g.codecOf(fd)
	if err != nil {
		return err
	}
	g.P("case num == ", fd.Desc.Number(), " && wt == ", int(c.wt), ":")
	g.P("var v ", c.raw)
	read := "v, b, err = " + g.k(c.read) + "(b, " + strconv.Quote(string(fd.Desc.FullName())) + ")"
	o := realOneof(fd)
	if fd.Desc.Kind() != protoreflect.MessageKind {
		g.P(read)
		val := g.k(c.conv("v"))
		switch {
		case fd.Desc.IsList():
			g.P("x.", fd.GoName, " = append(x.", fd.GoName, ", ", val, ")")
		case o != nil:
			g.P("x.", o.GoName, " = &", fd.GoIdent.GoName, "{", fd.GoName, ": ", val, "}")
		case isPointerScalar(fd):
			g.P("p := ", val)
			g.P("x.", fd.GoName, " = &p")
		default:
			g.P("x.", fd.GoName, " = ", val)
		}
		return nil
	}
	merge, typ := mergeMethod(fd.Message), c.goType[1:]
	g.P("if ", read, "; err == nil {")
	switch {
	case fd.Desc.IsList():
		g.P("m := new(", typ, ")")
		g.P("err = m.", merge, "(v)")
		g.P("x.", fd.GoName, " = append(x.", fd.GoName, ", m)")
	case o != nil:
		// The same member twice merges, as protobuf-go does.
		g.P("m, ok := x.", o.GoName, ".(*", fd.GoIdent.GoName, ")")
		g.P("if !ok || m == nil || m.", fd.GoName, " == nil {")
		g.P("m = &", fd.GoIdent.GoName, "{", fd.GoName, ": new(", typ, ")}")
		g.P("x.", o.GoName, " = m")
		g.P("}")
		g.P("err = m.", fd.GoName, ".", merge, "(v)")
	default:
		g.P("if x.", fd.GoName, " == nil {")
		g.P("x.", fd.GoName, " = new(", typ, ")")
		g.P("}")
		g.P("err = x.", fd.GoName, ".", merge, "(v)")
	}
	g.P("}")
	return nil
}

// mapEntryDecode emits the decoder of one map entry {1: key, 2: value}: a
// missing key or value is the zero value (an empty message), a repeated
// key replaces the earlier entry.
func (g *gen) mapEntryDecode(m *protogen.Message, fd *protogen.Field) error {
	kc, vc, err := g.mapCodecs(fd)
	if err != nil {
		return err
	}
	full := strconv.Quote(string(fd.Desc.FullName()))
	val := fd.Message.Fields[1]
	isMsg := val.Desc.Kind() == protoreflect.MessageKind
	g.P("func (x *", m.GoIdent.GoName, ") merge", fd.GoName, "Entry(b []byte) (err error) {")
	g.P("var num int32")
	g.P("var wt int")
	g.P("var mk ", kc.goType)
	g.P("var mv ", vc.goType)
	g.P("for len(b) > 0 {")
	g.P("if num, wt, b, err = ", g.k("K.ReadTag"), "(b, ", full, "); err != nil {")
	g.P("return err")
	g.P("}")
	g.P("switch {")
	g.P("case num == 1 && wt == ", int(kc.wt), ":")
	g.P("var v ", kc.raw)
	g.P("v, b, err = ", g.k(kc.read), "(b, ", full, ")")
	g.P("mk = ", g.k(kc.conv("v")))
	g.P("case num == 2 && wt == ", int(vc.wt), ":")
	g.P("var v ", vc.raw)
	if isMsg {
		g.P("if v, b, err = ", g.k(vc.read), "(b, ", full, "); err == nil {")
		g.P("if mv == nil {")
		g.P("mv = new(", vc.goType[1:], ")")
		g.P("}")
		g.P("err = mv.", mergeMethod(val.Message), "(v)")
		g.P("}")
	} else {
		g.P("v, b, err = ", g.k(vc.read), "(b, ", full, ")")
		g.P("mv = ", g.k(vc.conv("v")))
	}
	g.P("default:")
	g.P("b, err = ", g.k("K.Skip"), "(num, wt, b, ", full, ")")
	g.P("}")
	g.P("if err != nil {")
	g.P("return err")
	g.P("}")
	g.P("}")
	if isMsg {
		g.P("if mv == nil {")
		g.P("mv = new(", vc.goType[1:], ")")
		g.P("}")
	}
	g.P("if x.", fd.GoName, " == nil {")
	g.P("x.", fd.GoName, " = make(map[", kc.goType, "]", vc.goType, ")")
	g.P("}")
	g.P("x.", fd.GoName, "[mk] = mv")
	g.P("return nil")
	g.P("}")
	g.P()
	return nil
}
