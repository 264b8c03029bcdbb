package rpc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
)

// NewReflection serves gRPC server reflection, v1 and v1alpha, for files:
// what grpcurl and buf curl use to discover services without local protos.
// It lists the files' services and answers file and symbol lookups with
// the file and its dependencies.
func NewReflection(files []*FileDesc, opts ...Option) (v1Path string, v1 http.Handler, v1alphaPath string, v1alpha http.Handler) {
	r := &reflector{byName: map[string]*FileDesc{}, bySymbol: map[string]*FileDesc{}}
	var add func(f *FileDesc)
	add = func(f *FileDesc) {
		if _, ok := r.byName[f.Name]; ok {
			return
		}
		r.byName[f.Name] = f
		for _, s := range f.Symbols {
			r.bySymbol[s] = f
		}
		for _, d := range f.Deps {
			add(d)
		}
	}
	for _, f := range files {
		add(f)
		r.services = append(r.services, f.Services...)
	}
	const svc = "ServerReflection"
	v1Path = "/grpc.reflection.v1." + svc + "/"
	v1alphaPath = "/grpc.reflection.v1alpha." + svc + "/"
	v1 = NewServiceHandler(NewBidiStreamHandler[reflectRequest, reflectResponse](v1Path+"ServerReflectionInfo", r.serve, opts...))
	v1alpha = NewServiceHandler(NewBidiStreamHandler[reflectRequest, reflectResponse](v1alphaPath+"ServerReflectionInfo", r.serve, opts...))
	return v1Path, v1, v1alphaPath, v1alpha
}

type reflector struct {
	services []string
	byName   map[string]*FileDesc
	bySymbol map[string]*FileDesc
}

func (r *reflector) serve(_ context.Context, s *BidiStream[reflectRequest, reflectResponse]) error {
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(r.answer(req)); err != nil {
			return err
		}
	}
}

func (r *reflector) answer(req *reflectRequest) *reflectResponse {
	res := &reflectResponse{host: req.host, original: req.raw}
	switch req.kind {
	case reqListServices:
		res.services = r.services
	case reqFileByName:
		if f := r.byName[req.arg]; f != nil {
			res.files = r.withDeps(f)
		} else {
			res.errCode, res.errMsg = CodeNotFound, "file not found: "+req.arg
		}
	case reqFileBySymbol:
		if f := r.symbol(req.arg); f != nil {
			res.files = r.withDeps(f)
		} else {
			res.errCode, res.errMsg = CodeNotFound, "symbol not found: "+req.arg
		}
	case reqExtensionNumbers:
		if r.symbol(req.arg) != nil {
			res.extBase, res.extList = req.arg, true
		} else {
			res.errCode, res.errMsg = CodeNotFound, "type not found: "+req.arg
		}
	case reqFileByExtension:
		res.errCode, res.errMsg = CodeNotFound, "extension not found: "+req.arg
	default:
		res.errCode, res.errMsg = CodeInvalidArgument, "invalid reflection request"
	}
	return res
}

// symbol finds the file defining a full name; a leading dot is allowed.
func (r *reflector) symbol(name string) *FileDesc {
	return r.bySymbol[strings.TrimPrefix(name, ".")]
}

// withDeps is f's raw descriptor then its transitive dependencies'.
func (r *reflector) withDeps(f *FileDesc) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	var walk func(f *FileDesc)
	walk = func(f *FileDesc) {
		if seen[f.Name] {
			return
		}
		seen[f.Name] = true
		out = append(out, f.Raw)
		for _, d := range f.Deps {
			walk(d)
		}
	}
	walk(f)
	return out
}
