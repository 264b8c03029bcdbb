package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sandboxd/envd/internal/testenv"
)

// TestReflectionAsGrpcurlUsesIt does what grpcurl and buf curl do against a
// server without local protos: list services over gRPC reflection (h2c),
// fetch the descriptors, check them against PROTOCOL.md section 2 (the same
// tables as TestSchemaPinnedToProtocol), then call an RPC with a dynamic
// message built from JSON text.
func TestReflectionAsGrpcurlUsesIt(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream := grpcreflect.NewClient(e.H2C, e.URL).NewStream(ctx)
		defer stream.Close()
		names, err := stream.ListServices()
		if err != nil {
			t.Fatal(err)
		}
		listed := map[protoreflect.FullName]bool{}
		for _, n := range names {
			listed[n] = true
		}
		set := &descriptorpb.FileDescriptorSet{}
		seen := map[string]bool{}
		for svc := range wantMethods {
			if !listed[protoreflect.FullName(svc)] {
				t.Fatalf("reflection does not list %s: %v", svc, names)
			}
			fds, err := stream.FileContainingSymbol(protoreflect.FullName(svc))
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range fds {
				if !seen[fd.GetName()] {
					seen[fd.GetName()] = true
					set.File = append(set.File, fd)
				}
			}
		}
		files, err := protodesc.NewFiles(set)
		if err != nil {
			t.Fatalf("reflected descriptors do not link: %v", err)
		}
		gotM, gotE, gotS := map[string][]string{}, map[string][]string{}, map[string][]string{}
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			if fd.Package() != "process" && fd.Package() != "filesystem" {
				return true // google/protobuf/timestamp.proto
			}
			walk(fd.Messages(), fd.Enums(), gotM, gotE)
			for i := range fd.Services().Len() {
				s := fd.Services().Get(i)
				for j := range s.Methods().Len() {
					m := s.Methods().Get(j)
					kind := map[[2]bool]string{{false, false}: "unary", {false, true}: "server-stream",
						{true, false}: "client-stream", {true, true}: "bidi-stream"}[[2]bool{m.IsStreamingClient(), m.IsStreamingServer()}]
					gotS[string(s.FullName())] = append(gotS[string(s.FullName())],
						fmt.Sprintf("%s %s -> %s %s", m.Name(), m.Input().FullName(), m.Output().FullName(), kind))
				}
			}
			return true
		})
		diff(t, "reflected message", wantMessages, gotM, true)
		diff(t, "reflected enum", wantEnums, gotE, true)
		diff(t, "reflected service", wantMethods, gotS, false)

		d, err := files.FindDescriptorByName("filesystem.Filesystem.Stat")
		if err != nil {
			t.Fatal(err)
		}
		md := d.(protoreflect.MethodDescriptor)
		path := filepath.Join(t.TempDir(), "probe.txt")
		if err := os.WriteFile(path, []byte("grpcurl"), 0o644); err != nil {
			t.Fatal(err)
		}
		req := dynamicpb.NewMessage(md.Input())
		if err := protojson.Unmarshal([]byte(`{"path":"`+path+`"}`), req); err != nil {
			t.Fatal(err)
		}
		client := connect.NewClient[dynamicpb.Message, dynamicpb.Message](e.H2C, e.URL+"/filesystem.Filesystem/Stat",
			connect.WithGRPC(), connect.WithSchema(md),
			connect.WithResponseInitializer(func(_ connect.Spec, msg any) error {
				*msg.(*dynamicpb.Message) = *dynamicpb.NewMessage(md.Output())
				return nil
			}))
		resp, err := client.CallUnary(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		out, err := protojson.Marshal(resp.Msg)
		if err != nil {
			t.Fatal(err)
		}
		entry := resp.Msg.Get(md.Output().Fields().ByName("entry")).Message()
		fields := entry.Descriptor().Fields()
		if entry.Get(fields.ByName("name")).String() != "probe.txt" || entry.Get(fields.ByName("size")).Int() != 7 {
			t.Fatalf("Stat through reflection: %s", out)
		}
	})
}
