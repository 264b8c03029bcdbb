package main

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonKey is the quoted member name and colon, as a Go literal.
func jsonKey(fd *protogen.Field) (string, error) {
	name := fd.Desc.JSONName()
	for _, c := range name {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", fmt.Errorf("field %s: JSON name %q needs escaping", fd.Desc.FullName(), name)
		}
	}
	return strconv.Quote(`"` + name + `":`), nil
}

func (g *gen) jsonCodec(m *protogen.Message) error {
	name := m.GoIdent.GoName
	g.P("// AppendProtoJSON appends the proto3 JSON protojson writes (declaration")
	g.P("// order, zero values omitted) to b.")
	g.P("func (x *", name, ") AppendProtoJSON(b []byte) []byte {")
	if len(m.Fields) == 0 {
		g.P(`return append(b, "{}"...)`)
	} else {
		g.P("if x == nil {")
		g.P(`return append(b, "{}"...)`)
		g.P("}")
		g.P("b = append(b, '{')")
		g.P("s := len(b)")
		for _, fd := range m.Fields {
			if err := g.fieldJSON(fd); err != nil {
				return err
			}
		}
		g.P("return append(b, '}')")
	}
	g.P("}")
	g.P()
	kit := g.kitName("JSONDecoder")
	g.P("// UnmarshalProtoJSON resets x and decodes proto3 JSON as protojson does")
	g.P("// with DiscardUnknown.")
	g.P("func (x *", name, ") UnmarshalProtoJSON(b []byte) error {")
	g.P("*x = ", name, "{}")
	g.P("d := ", g.kitName("NewJSONDecoder"), "(b)")
	g.P("if err := x.decodeJSON(d); err != nil {")
	g.P("return err")
	g.P("}")
	g.P("return d.End()")
	g.P("}")
	g.P()
	g.P("func (x *", name, ") decodeJSON(d *", kit, ") error {")
	g.P("if err := d.ObjectStart(); err != nil {")
	g.P("return err")
	g.P("}")
	if len(m.Fields) > 0 {
		g.P("var seen uint64")
	}
	for _, o := range m.Oneofs {
		if !o.Desc.IsSynthetic() {
			g.P("var oneofs uint64")
			break
		}
	}
	g.P("for first := true; ; first = false {")
	g.P("name, more, err := d.Member(first)")
	g.P("if err != nil || !more {")
	g.P("return err")
	g.P("}")
	if len(m.Fields) > 0 {
		g.P("var ok bool")
	}
	g.P("switch name {")
	for i, fd := range m.Fields {
		if err := g.fieldJSONDecode(fd, i); err != nil {
			return err
		}
	}
	g.P("default:")
	g.P("err = d.Skip()")
	g.P("}")
	g.P("if err != nil {")
	g.P("return err")
	g.P("}")
	g.P("}")
	g.P("}")
	g.P()
	return nil
}

func (g *gen) fieldJSON(fd *protogen.Field) error {
	key, err := jsonKey(fd)
	if err != nil {
		return err
	}
	writeKey := "b = " + g.kitName("AppendJSONKey") + "(b, s, " + key + ")"
	if fd.Desc.IsMap() {
		_, vc, err := g.mapCodecs(fd)
		if err != nil {
			return err
		}
		g.P("if len(x.", fd.GoName, ") > 0 {")
		g.P(writeKey)
		g.P("b = append(b, '{')")
		g.P("for i, k := range ", g.kitName("SortedKeys"), "(x.", fd.GoName, ") {")
		g.P("if i > 0 {")
		g.P("b = append(b, ',')")
		g.P("}")
		g.P("b = append(", g.kitName("AppendJSONString"), "(b, k), ':')")
		g.P("b = ", g.k(vc.jsonEnc("x."+fd.GoName+"[k]")))
		g.P("}")
		g.P("b = append(b, '}')")
		g.P("}")
		return nil
	}
	c, err := g.codecOf(fd)
	if err != nil {
		return err
	}
	if fd.Desc.IsList() {
		g.P("if len(x.", fd.GoName, ") > 0 {")
		g.P(writeKey)
		g.P("b = append(b, '[')")
		g.P("for i, v := range x.", fd.GoName, " {")
		g.P("if i > 0 {")
		g.P("b = append(b, ',')")
		g.P("}")
		g.P("b = ", g.k(c.jsonEnc("v")))
		g.P("}")
		g.P("b = append(b, ']')")
		g.P("}")
		return nil
	}
	v, guard := access(fd, c)
	g.P("if ", guard, " {")
	g.P(writeKey)
	g.P("b = ", g.k(c.jsonEnc(v)))
	g.P("}")
	return nil
}

// jsonValue emits statements reading one value of fd's kind into err and
// a value passed to set, which emits the statements storing it.
func (g *gen) jsonValue(fd *protogen.Field, c codec, set func(v string)) {
	switch fd.Desc.Kind() {
	case protoreflect.MessageKind:
		method := "decodeJSON"
		if fd.Message.Desc.FullName() == timestampName {
			method = "DecodeJSON"
		}
		g.P("v := new(", c.goType[1:], ")")
		g.P("err = v.", method, "(d)")
		set("v")
	case protoreflect.EnumKind:
		g.P("var n int32")
		g.P("var known bool")
		g.P("if n, known, err = d.Enum(", c.goType, "_value); known {")
		set(c.goType + "(n)")
		g.P("}")
	default:
		g.P("var v ", c.goType)
		g.P("v, err = d.", c.jsonDec, "()")
		set("v")
	}
}

func (g *gen) fieldJSONDecode(fd *protogen.Field, i int) error {
	names := strconv.Quote(fd.Desc.JSONName())
	if string(fd.Desc.Name()) != fd.Desc.JSONName() {
		names += ", " + strconv.Quote(string(fd.Desc.Name()))
	}
	g.P("case ", names, ":")
	g.P("if ok, err = d.Present(&seen, ", i, ", name); ok {")
	defer g.P("}")
	field := "x." + fd.GoName
	if fd.Desc.IsMap() {
		_, vc, err := g.mapCodecs(fd)
		if err != nil {
			return err
		}
		g.P("err = d.ObjectStart()")
		g.P("for first := true; err == nil; first = false {")
		g.P("k, more, e := d.Member(first)")
		g.P("if e != nil || !more {")
		g.P("err = e")
		g.P("break")
		g.P("}")
		g.P("if _, dup := ", field, "[k]; dup {")
		g.P("err = d.DuplicateKey(k)")
		g.P("break")
		g.P("}")
		g.jsonValue(fd.Message.Fields[1], vc, func(v string) {
			g.P("if ", field, " == nil {")
			g.P(field, " = make(map[string]", vc.goType, ")")
			g.P("}")
			g.P(field, "[k] = ", v)
		})
		g.P("}")
		return nil
	}
	c, err := g.codecOf(fd)
	if err != nil {
		return err
	}
	if fd.Desc.IsList() {
		g.P("err = d.ArrayStart()")
		g.P("for first := true; err == nil; first = false {")
		g.P("if more, e := d.Elem(first); e != nil || !more {")
		g.P("err = e")
		g.P("break")
		g.P("}")
		g.jsonValue(fd, c, func(v string) { g.P(field, " = append(", field, ", ", v, ")") })
		g.P("}")
		return nil
	}
	if o := realOneof(fd); o != nil {
		bit := 0
		for j, oo := range fd.Parent.Oneofs {
			if oo == o {
				bit = j
			}
		}
		g.P("if err = d.Oneof(&oneofs, ", bit, ", name, ", strconv.Quote(string(o.Desc.FullName())), "); err == nil {")
		g.jsonValue(fd, c, func(v string) { g.P("x.", o.GoName, " = &", fd.GoIdent.GoName, "{", fd.GoName, ": ", v, "}") })
		g.P("}")
		return nil
	}
	if isPointerScalar(fd) {
		g.jsonValue(fd, c, func(v string) {
			g.P("p := ", v)
			g.P(field, " = &p")
		})
		return nil
	}
	g.jsonValue(fd, c, func(v string) { g.P(field, " = ", v) })
	return nil
}
