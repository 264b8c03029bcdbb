package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// codec says how one value of a kind is written and read. The func fields
// take Go expressions and return Go expressions; K is replaced by the
// wirekit package name.
type codec struct {
	goType  string
	wt      protowire.Type
	read    string              // wirekit function reading the raw value
	raw     string              // its Go type
	conv    func(string) string // raw value to Go value
	size    func(string) string // payload size, without the tag
	enc     string              // appends tag TAG and value %v to b
	nonzero func(string) string // proto3 implicit presence
	jsonEnc func(string) string // appends the JSON value to b
	jsonDec string              // decoder method returning (value, error)
}

func f(format string) func(string) string {
	return func(v string) string { return strings.ReplaceAll(format, "%v", v) }
}

// appendField is the expression appending field num holding v.
func (c codec) appendField(num protoreflect.FieldNumber, v string) string {
	tag := fmt.Sprintf("%#02x", uint64(num)<<3|uint64(c.wt))
	return strings.ReplaceAll(strings.ReplaceAll(c.enc, "TAG", tag), "%v", v)
}

var varint = codec{wt: protowire.VarintType, read: "K.ReadVarint", raw: "uint64", nonzero: f("%v != 0")}

func varintCodec(goType, toU64, conv, jsonEnc, jsonDec string) codec {
	c := varint
	c.goType, c.conv, c.jsonEnc, c.jsonDec = goType, f(conv), f(jsonEnc), jsonDec
	c.size = f("K.SizeVarint(" + toU64 + ")")
	c.enc = "K.AppendVarintField(b, TAG, " + toU64 + ")"
	return c
}

var scalars = map[protoreflect.Kind]codec{
	protoreflect.Int32Kind:  varintCodec("int32", "uint64(int64(%v))", "int32(%v)", "K.AppendJSONInt(b, int64(%v))", "Int32"),
	protoreflect.Sint32Kind: varintCodec("int32", "K.EncodeZigZag(int64(%v))", "K.DecodeZigZag32(%v)", "K.AppendJSONInt(b, int64(%v))", "Int32"),
	protoreflect.Uint32Kind: varintCodec("uint32", "uint64(%v)", "uint32(%v)", "K.AppendJSONUint(b, uint64(%v))", "Uint32"),
	protoreflect.Int64Kind:  varintCodec("int64", "uint64(%v)", "int64(%v)", "K.AppendJSONInt64(b, %v)", "Int64"),
	protoreflect.Sint64Kind: varintCodec("int64", "K.EncodeZigZag(%v)", "K.DecodeZigZag(%v)", "K.AppendJSONInt64(b, %v)", "Int64"),
	protoreflect.Uint64Kind: varintCodec("uint64", "%v", "%v", "K.AppendJSONUint64(b, %v)", "Uint64"),
	protoreflect.BoolKind: {
		goType: "bool", wt: protowire.VarintType, read: "K.ReadVarint", raw: "uint64",
		conv: f("%v != 0"), size: f("1"), enc: "K.AppendVarintField(b, TAG, K.BoolVarint(%v))", nonzero: f("%v"),
		jsonEnc: f("K.AppendJSONBool(b, %v)"), jsonDec: "Bool",
	},
	protoreflect.StringKind: {
		goType: "string", wt: protowire.BytesType, read: "K.ReadString", raw: "string",
		conv: f("%v"), size: f("K.SizeBytes(len(%v))"), enc: "K.AppendStringField(b, TAG, %v)", nonzero: f(`%v != ""`),
		jsonEnc: f("K.AppendJSONString(b, %v)"), jsonDec: "String",
	},
	protoreflect.BytesKind: {
		goType: "[]byte", wt: protowire.BytesType, read: "K.ReadBytes", raw: "[]byte",
		conv: f("K.CloneBytes(%v)"), size: f("K.SizeBytes(len(%v))"), enc: "K.AppendBytesField(b, TAG, %v)", nonzero: f("len(%v) > 0"),
		jsonEnc: f("K.AppendJSONBytes(b, %v)"), jsonDec: "Bytes",
	},
}

func (g *gen) codecOf(fd *protogen.Field) (codec, error) {
	switch fd.Desc.Kind() {
	case protoreflect.EnumKind:
		id, err := g.enumIdent(fd.Enum)
		if err != nil {
			return codec{}, err
		}
		e := g.QualifiedGoIdent(id)
		c := varintCodec(e, "uint64(int64(%v))", e+"(int32(%v))", "K.AppendJSONEnum(b, "+e+"_name[int32(%v)], int32(%v))", "")
		return c, nil
	case protoreflect.MessageKind:
		id, err := g.msgIdent(fd.Message)
		if err != nil {
			return codec{}, err
		}
		app := "appendProto"
		if fd.Message.Desc.FullName() == timestampName {
			app = "AppendProto"
		}
		return codec{
			goType: "*" + g.QualifiedGoIdent(id), wt: protowire.BytesType, read: "K.ReadBytes", raw: "[]byte",
			size:    f("K.SizeBytes(%v.SizeProto())"),
			enc:     "%v." + app + "(K.AppendVarintField(b, TAG, uint64(%v.SizeProto())))",
			nonzero: f("%v != nil"),
			jsonEnc: f("%v.AppendProtoJSON(b)"),
		}, nil
	}
	c, ok := scalars[fd.Desc.Kind()]
	if !ok {
		return codec{}, fmt.Errorf("field %s: kind %v is not supported", fd.Desc.FullName(), fd.Desc.Kind())
	}
	return c, nil
}

// k replaces the K placeholder with the wirekit package's name.
func (g *gen) k(s string) string {
	return strings.ReplaceAll(s, "K.", g.kitName("K")[:len(g.kitName("K"))-1])
}

// tag is the Go byte list of a field's tag.
func tag(num protoreflect.FieldNumber, wt protowire.Type) (string, int) {
	t := protowire.AppendTag(nil, num, wt)
	parts := make([]string, len(t))
	for i, c := range t {
		parts[i] = fmt.Sprintf("0x%02x", c)
	}
	return strings.Join(parts, ", "), len(t)
}

func (g *gen) protoCodec(m *protogen.Message) error {
	name := m.GoIdent.GoName
	fields := sortedByNumber(m)
	// SizeProto.
	g.P("// SizeProto is the length of the binary encoding.")
	g.P("func (x *", name, ") SizeProto() int {")
	g.P("if x == nil {")
	g.P("return 0")
	g.P("}")
	g.P("n := 0")
	for _, fd := range fields {
		if err := g.fieldSize(fd); err != nil {
			return err
		}
	}
	g.P("return n")
	g.P("}")
	g.P()
	// AppendProto.
	g.P("// AppendProto appends the binary encoding (fields in number order, map")
	g.P("// entries by key) to b.")
	g.P("func (x *", name, ") AppendProto(b []byte) []byte {")
	g.P("return x.appendProto(", g.kitName("Grow"), "(b, x.SizeProto()))")
	g.P("}")
	g.P()
	g.P("func (x *", name, ") appendProto(b []byte) []byte {")
	g.P("if x == nil {")
	g.P("return b")
	g.P("}")
	for _, fd := range fields {
		if err := g.fieldAppend(fd); err != nil {
			return err
		}
	}
	g.P("return b")
	g.P("}")
	g.P()
	// UnmarshalProto.
	g.P("// UnmarshalProto resets x and decodes b, skipping unknown fields.")
	g.P("func (x *", name, ") UnmarshalProto(b []byte) error {")
	g.P("*x = ", name, "{}")
	g.P("return x.mergeProto(b)")
	g.P("}")
	g.P()
	return g.mergeProto(m, fields)
}

// access is how generated code reaches f's single value: the expression,
// and the guard under which it is present (empty: always).
func access(fd *protogen.Field, c codec) (val, guard string) {
	if o := realOneof(fd); o != nil {
		return "o." + fd.GoName, "o, ok := x." + o.GoName + ".(*" + fd.GoIdent.GoName + "); ok && o != nil"
	}
	v := "x." + fd.GoName
	if isPointerScalar(fd) {
		return "*" + v, v + " != nil"
	}
	return v, c.nonzero(v)
}

func (g *gen) fieldSize(fd *protogen.Field) error {
	if fd.Desc.IsMap() {
		kc, vc, err := g.mapCodecs(fd)
		if err != nil {
			return err
		}
		_, vtl := tag(2, vc.wt)
		_, tl := tag(fd.Desc.Number(), protowire.BytesType)
		g.P("for k, v := range x.", fd.GoName, " {")
		g.P("e := 1 + ", g.k(kc.size("k")), " + ", vtl, " + ", g.k(vc.size("v")))
		g.P("n += ", tl, " + ", g.k("K.SizeBytes(e)"))
		g.P("}")
		return nil
	}
	c, err := g.codecOf(fd)
	if err != nil {
		return err
	}
	_, tl := tag(fd.Desc.Number(), c.wt)
	if fd.Desc.IsList() {
		g.P("for _, v := range x.", fd.GoName, " {")
		g.P("n += ", tl, " + ", g.k(c.size("v")))
		g.P("}")
		return nil
	}
	v, guard := access(fd, c)
	g.P("if ", guard, " {")
	g.P("n += ", tl, " + ", g.k(c.size(v)))
	g.P("}")
	return nil
}

func (g *gen) mapCodecs(fd *protogen.Field) (codec, codec, error) {
	kc, err := g.codecOf(fd.Message.Fields[0])
	if err != nil {
		return kc, kc, err
	}
	vc, err := g.codecOf(fd.Message.Fields[1])
	return kc, vc, err
}

func (g *gen) fieldAppend(fd *protogen.Field) error {
	if fd.Desc.IsMap() {
		kc, vc, err := g.mapCodecs(fd)
		if err != nil {
			return err
		}
		_, vtl := tag(2, vc.wt)
		entry := codec{wt: protowire.BytesType, enc: "K.AppendVarintField(b, TAG, %v)"}
		g.P("for _, k := range ", g.k("K.SortedKeys"), "(x.", fd.GoName, ") {")
		g.P("v := x.", fd.GoName, "[k]")
		g.P("b = ", g.k(entry.appendField(fd.Desc.Number(), "uint64(1 + "+kc.size("k")+" + "+fmt.Sprint(vtl)+" + "+vc.size("v")+")")))
		g.P("b = ", g.k(kc.appendField(1, "k")))
		g.P("b = ", g.k(vc.appendField(2, "v")))
		g.P("}")
		return nil
	}
	c, err := g.codecOf(fd)
	if err != nil {
		return err
	}
	if fd.Desc.IsList() {
		g.P("for _, v := range x.", fd.GoName, " {")
		g.P("b = ", g.k(c.appendField(fd.Desc.Number(), "v")))
		g.P("}")
		return nil
	}
	v, guard := access(fd, c)
	g.P("if ", guard, " {")
	g.P("b = ", g.k(c.appendField(fd.Desc.Number(), v)))
	g.P("}")
	return nil
}
