package compat

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The Wrenn host agent compiles its own copy of the protos, so a field
// renumbered in our proto/ changes what it reads even though our own client
// and server still agree. foreignCodec gives the replayed host flows that
// independent copy: it builds descriptors from the PROTOCOL.md tables in
// schema_test.go (wantMessages, wantEnums) and re-encodes every message
// through them, bridging to our generated types by JSON field names.

var (
	foreignOnce  sync.Once
	foreignFiles *protoregistry.Files
	foreignErr   error
)

// foreignSchema returns the spec's schema as linked descriptors.
func foreignSchema(t testing.TB) *protoregistry.Files {
	t.Helper()
	foreignOnce.Do(func() { foreignFiles, foreignErr = buildForeign() })
	if foreignErr != nil {
		t.Fatalf("spec schema: %v", foreignErr)
	}
	return foreignFiles
}

var scalarTypes = map[string]descriptorpb.FieldDescriptorProto_Type{
	"string": descriptorpb.FieldDescriptorProto_TYPE_STRING, "bytes": descriptorpb.FieldDescriptorProto_TYPE_BYTES,
	"bool": descriptorpb.FieldDescriptorProto_TYPE_BOOL, "uint32": descriptorpb.FieldDescriptorProto_TYPE_UINT32,
	"sint32": descriptorpb.FieldDescriptorProto_TYPE_SINT32, "int64": descriptorpb.FieldDescriptorProto_TYPE_INT64,
}

func buildForeign() (*protoregistry.Files, error) {
	files := map[string]*descriptorpb.FileDescriptorProto{}
	file := func(pkg string) *descriptorpb.FileDescriptorProto {
		if f, ok := files[pkg]; ok {
			return f
		}
		f := &descriptorpb.FileDescriptorProto{Name: proto.String("spec/" + pkg + ".proto"), Package: proto.String(pkg), Syntax: proto.String("proto3")}
		if pkg == "filesystem" {
			f.Dependency = []string{"google/protobuf/timestamp.proto"}
		}
		files[pkg] = f
		return f
	}
	msgs := map[string]*descriptorpb.DescriptorProto{}
	var names []string
	for name := range wantMessages {
		names = append(names, name)
	}
	// Parents sort before their nested messages ("a.B" < "a.B.C").
	slices.Sort(names)
	for _, full := range names {
		pkg, rel, _ := strings.Cut(full, ".")
		parent, short := "", rel
		if i := strings.LastIndex(rel, "."); i >= 0 {
			parent, short = pkg+"."+rel[:i], rel[i+1:]
		}
		m := &descriptorpb.DescriptorProto{Name: proto.String(short)}
		if err := addFields(m, wantMessages[full]); err != nil {
			return nil, fmt.Errorf("%s: %w", full, err)
		}
		msgs[full] = m
		if parent != "" {
			msgs[parent].NestedType = append(msgs[parent].NestedType, m)
		} else {
			file(pkg).MessageType = append(file(pkg).MessageType, m)
		}
	}
	for full, vals := range wantEnums {
		pkg, short, _ := strings.Cut(full, ".")
		e := &descriptorpb.EnumDescriptorProto{Name: proto.String(short)}
		for _, v := range vals {
			name, num, _ := strings.Cut(v, "=")
			n, err := strconv.Atoi(num)
			if err != nil {
				return nil, err
			}
			e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(int32(n))})
		}
		file(pkg).EnumType = append(file(pkg).EnumType, e)
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(timestamppb.File_google_protobuf_timestamp_proto), file("process"), file("filesystem")}}
	return protodesc.NewFiles(set)
}

// addFields turns the table lines "number name type [label]" into fields.
func addFields(m *descriptorpb.DescriptorProto, lines []string) error {
	oneofs := map[string]int32{}
	for _, line := range lines {
		w := strings.Fields(line)
		if len(w) < 3 {
			return fmt.Errorf("bad line %q", line)
		}
		num, err := strconv.Atoi(w[0])
		if err != nil {
			return err
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(w[1]), Number: proto.Int32(int32(num)),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
		switch typ := w[2]; {
		case typ == "map<string,string>":
			entry := strings.ToUpper(w[1][:1]) + w[1][1:] + "Entry"
			m.NestedType = append(m.NestedType, &descriptorpb.DescriptorProto{
				Name: proto.String(entry), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: proto.String("key"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
					{Name: proto.String("value"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
				}})
			f.Type, f.TypeName = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), proto.String(entry)
			f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		case scalarTypes[typ] != 0:
			f.Type = scalarTypes[typ].Enum()
		case wantEnums[typ] != nil:
			f.Type, f.TypeName = descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(), proto.String("."+typ)
		default:
			f.Type, f.TypeName = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), proto.String("."+typ)
		}
		for _, mod := range w[3:] {
			switch {
			case mod == "repeated":
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			case mod == "optional":
				f.Proto3Optional = proto.Bool(true)
				f.OneofIndex = proto.Int32(int32(len(m.OneofDecl)))
				m.OneofDecl = append(m.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String("_" + w[1])})
			case strings.HasPrefix(mod, "oneof="):
				name := strings.TrimPrefix(mod, "oneof=")
				idx, ok := oneofs[name]
				if !ok {
					idx = int32(len(m.OneofDecl))
					oneofs[name] = idx
					m.OneofDecl = append(m.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(name)})
				}
				f.OneofIndex = proto.Int32(idx)
			}
		}
		m.Field = append(m.Field, f)
	}
	return nil
}

// foreignCodec is the binary codec ("proto") of a client compiled from the
// spec's schema: our typed message → JSON → spec-schema message → bytes,
// and back. A field the two schemas name differently fails the bridge; one
// they number differently is lost on the wire, as it would be for the host.
type foreignCodec struct{ files *protoregistry.Files }

func (foreignCodec) Name() string { return "proto" }

func (c foreignCodec) spec(m any) (proto.Message, *dynamicpb.Message, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, nil, fmt.Errorf("%T is not a proto message", m)
	}
	d, err := c.files.FindDescriptorByName(pm.ProtoReflect().Descriptor().FullName())
	if err != nil {
		return nil, nil, fmt.Errorf("not in the spec schema: %w", err)
	}
	return pm, dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor)), nil
}

func (c foreignCodec) Marshal(m any) ([]byte, error) {
	pm, dm, err := c.spec(m)
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(pm)
	if err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(js, dm); err != nil {
		return nil, fmt.Errorf("request does not fit the spec schema: %w", err)
	}
	return proto.Marshal(dm)
}

func (c foreignCodec) Unmarshal(b []byte, m any) error {
	pm, dm, err := c.spec(m)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, dm); err != nil {
		return err
	}
	js, err := protojson.Marshal(dm)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(js, pm)
}
