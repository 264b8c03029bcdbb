package main

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func (g *gen) rpcName(name string) string {
	return g.QualifiedGoIdent(protogen.GoIdent{GoName: name, GoImportPath: g.rpc})
}

// methodShape is the handler signature of m (after the method name), the
// rpc constructor and the unimplemented body.
func (g *gen) methodShape(m *protogen.Method) (sig, ctor, unimpl string, err error) {
	in, err := g.msgIdent(m.Input)
	if err != nil {
		return
	}
	out, err := g.msgIdent(m.Output)
	if err != nil {
		return
	}
	req, res := g.QualifiedGoIdent(in), g.QualifiedGoIdent(out)
	ctx := g.QualifiedGoIdent(protogen.GoIdent{GoName: "Context", GoImportPath: "context"})
	fail := "unimplemented(" + strconv.Quote(string(m.Desc.FullName())) + ")"
	switch {
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		sig = "(" + ctx + ", *" + g.rpcName("BidiStream") + "[" + req + ", " + res + "]) error"
		ctor, unimpl = "NewBidiStreamHandler", "return "+fail
	case m.Desc.IsStreamingClient():
		sig = "(" + ctx + ", *" + g.rpcName("ClientStream") + "[" + req + "]) (*" + g.rpcName("Response") + "[" + res + "], error)"
		ctor, unimpl = "NewClientStreamHandler", "return nil, "+fail
	case m.Desc.IsStreamingServer():
		sig = "(" + ctx + ", *" + g.rpcName("Request") + "[" + req + "], *" + g.rpcName("ServerStream") + "[" + res + "]) error"
		ctor, unimpl = "NewServerStreamHandler", "return "+fail
	default:
		sig = "(" + ctx + ", *" + g.rpcName("Request") + "[" + req + "]) (*" + g.rpcName("Response") + "[" + res + "], error)"
		ctor, unimpl = "NewUnaryHandler", "return nil, "+fail
	}
	ctor = g.rpcName(ctor) + "[" + req + ", " + res + "]"
	return sig, ctor, unimpl, nil
}

func (g *gen) service(s *protogen.Service) error {
	name := s.GoName
	full := string(s.Desc.FullName())
	g.P("// ", name, "Name is the fully-qualified name of the ", name, " service.")
	g.P("const ", name, "Name = ", strconv.Quote(full))
	g.P()
	g.P("// Procedures of ", full, ": the HTTP paths of its RPCs.")
	g.P("const (")
	for _, m := range s.Methods {
		g.P(name, m.GoName, "Procedure = ", strconv.Quote("/"+full+"/"+string(m.Desc.Name())))
	}
	g.P(")")
	g.P()
	g.P("// ", name, "Handler implements the ", full, " service.")
	g.P("type ", name, "Handler interface {")
	for _, m := range s.Methods {
		sig, _, _, err := g.methodShape(m)
		if err != nil {
			return err
		}
		g.P(m.Comments.Leading, m.GoName, sig)
	}
	g.P("}")
	g.P()
	g.P("// New", name, "Handler serves svc; it returns the path prefix to mount")
	g.P("// the handler on and the handler.")
	g.P("func New", name, "Handler(svc ", name, "Handler, opts ...", g.rpcName("Option"), ") (string, ",
		protogen.GoIdent{GoName: "Handler", GoImportPath: "net/http"}, ") {")
	g.P("return ", strconv.Quote("/"+full+"/"), ", ", g.rpcName("NewServiceHandler"), "(")
	for _, m := range s.Methods {
		_, ctor, _, err := g.methodShape(m)
		if err != nil {
			return err
		}
		g.P(ctor, "(", name, m.GoName, "Procedure, svc.", m.GoName, ", opts...),")
	}
	g.P(")")
	g.P("}")
	g.P()
	if !g.unimplDone {
		// One shared constructor keeps each Unimplemented method (and the
		// pointer wrapper the compiler adds when it is embedded) a call.
		g.unimplDone = true
		g.P("// unimplemented is the error of an RPC the service does not implement.")
		g.P("//")
		g.P("//go:noinline")
		g.P("func unimplemented(method string) error {")
		g.P("return ", g.rpcName("NewError"), "(", g.rpcName("CodeUnimplemented"), ", ",
			protogen.GoIdent{GoName: "New", GoImportPath: "errors"}, `(method + " is not implemented"))`)
		g.P("}")
		g.P()
	}
	g.P("// Unimplemented", name, "Handler returns CodeUnimplemented from every method.")
	g.P("type Unimplemented", name, "Handler struct{}")
	g.P()
	for _, m := range s.Methods {
		sig, _, unimpl, err := g.methodShape(m)
		if err != nil {
			return err
		}
		g.P("func (Unimplemented", name, "Handler) ", m.GoName, sig, " {")
		g.P(unimpl)
		g.P("}")
		g.P()
	}
	return nil
}

// descriptors emits the FileDesc of this file and, unexported, of each
// dependency that has no wire package of its own.
func (g *gen) descriptors() error {
	done := map[string]bool{}
	var emit func(f *protogen.File, exported bool) (string, error)
	emit = func(f *protogen.File, exported bool) (string, error) {
		varName := f.GoDescriptorIdent.GoName
		if !exported {
			varName = "f" + varName[1:]
		}
		if f.Generate && f != g.file {
			return g.QualifiedGoIdent(protogen.GoIdent{GoName: varName, GoImportPath: wirePath(f)}), nil
		}
		if done[f.Desc.Path()] {
			return varName, nil
		}
		done[f.Desc.Path()] = true
		var deps []string
		for i := 0; i < f.Desc.Imports().Len(); i++ {
			dep := g.plugin.FilesByPath[f.Desc.Imports().Get(i).Path()]
			if dep == nil {
				return "", fmt.Errorf("dependency %s missing from the request", f.Desc.Imports().Get(i).Path())
			}
			v, err := emit(dep, false)
			if err != nil {
				return "", err
			}
			deps = append(deps, v)
		}
		raw := proto.Clone(f.Proto).(*descriptorpb.FileDescriptorProto)
		raw.SourceCodeInfo = nil
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(raw)
		if err != nil {
			return "", err
		}
		var services []string
		for i := 0; i < f.Desc.Services().Len(); i++ {
			services = append(services, strconv.Quote(string(f.Desc.Services().Get(i).FullName())))
		}
		if exported {
			g.P("// ", varName, " describes ", f.Desc.Path(), " for gRPC reflection.")
		}
		g.P("var ", varName, " = &", g.rpcName("FileDesc"), "{")
		g.P("Name: ", strconv.Quote(f.Desc.Path()), ",")
		g.P("Raw: []byte(", quoteBytes(b), "),")
		if len(deps) > 0 {
			g.P("Deps: []*", g.rpcName("FileDesc"), "{", strings.Join(deps, ", "), "},")
		}
		if len(services) > 0 {
			g.P("Services: []string{", strings.Join(services, ", "), "},")
		}
		g.P("Symbols: []string{")
		for _, s := range symbols(f.Desc) {
			g.P(strconv.Quote(s), ",")
		}
		g.P("},")
		g.P("}")
		g.P()
		return varName, nil
	}
	_, err := emit(g.file, true)
	return err
}

// quoteBytes is b as a Go string literal split over lines.
func quoteBytes(b []byte) string {
	const line = 64
	var parts []string
	for len(b) > 0 {
		n := min(line, len(b))
		parts = append(parts, strconv.Quote(string(b[:n])))
		b = b[n:]
	}
	if len(parts) == 0 {
		return `""`
	}
	return strings.Join(parts, " +\n")
}

// symbols lists every full name fd defines: messages (nested too) with
// their fields and oneofs, enums with their values, services and methods.
func symbols(fd protoreflect.FileDescriptor) []string {
	var out []string
	var enums func(es protoreflect.EnumDescriptors)
	enums = func(es protoreflect.EnumDescriptors) {
		for i := 0; i < es.Len(); i++ {
			e := es.Get(i)
			out = append(out, string(e.FullName()))
			for j := 0; j < e.Values().Len(); j++ {
				out = append(out, string(e.Values().Get(j).FullName()))
			}
		}
	}
	var msgs func(ms protoreflect.MessageDescriptors)
	msgs = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			out = append(out, string(m.FullName()))
			for j := 0; j < m.Fields().Len(); j++ {
				out = append(out, string(m.Fields().Get(j).FullName()))
			}
			for j := 0; j < m.Oneofs().Len(); j++ {
				out = append(out, string(m.Oneofs().Get(j).FullName()))
			}
			enums(m.Enums())
			msgs(m.Messages())
		}
	}
	enums(fd.Enums())
	msgs(fd.Messages())
	for i := 0; i < fd.Services().Len(); i++ {
		s := fd.Services().Get(i)
		out = append(out, string(s.FullName()))
		for j := 0; j < s.Methods().Len(); j++ {
			out = append(out, string(s.Methods().Get(j).FullName()))
		}
	}
	return out
}
