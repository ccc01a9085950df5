//go:build ignore

// Writes the descriptors of the TensorFlow .proto files that TF Serving's
// protos import, taken from graft's generated Go code, as a FileDescriptorSet
// whose go_package options name graft's packages. protoc reads it with
// --descriptor_set_in, so the generated TF Serving code imports graft's types
// instead of a second copy of TensorFlow's protos, and no TensorFlow source
// tree is needed to generate it.
//
//	go run serve/proto/descset.go > tf.pb
package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	_ "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	_ "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// The files TF Serving's protos import; their dependencies follow.
var roots = []string{
	"tensorflow/core/framework/tensor.proto",
	"tensorflow/core/example/example.proto",
	"tensorflow/core/protobuf/meta_graph.proto",
	"tensorflow/core/protobuf/error_codes.proto",
	"tensorflow/core/protobuf/config.proto",
	"tensorflow/core/protobuf/named_tensor.proto",
	"google/protobuf/any.proto",
	"google/protobuf/wrappers.proto",
}

func main() {
	// A file's Go package is where its generated types live; a file that only
	// re-exports another (error_codes.proto) keeps TensorFlow's go_package,
	// moved to where graft puts TensorFlow's packages.
	goPkg := map[string]string{}
	record := func(fd protoreflect.FileDescriptor, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if _, ok := goPkg[fd.Path()]; !ok && t.PkgPath() != "" {
			goPkg[fd.Path()] = t.PkgPath()
		}
	}
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		record(mt.Descriptor().ParentFile(), reflect.TypeOf(mt.Zero().Interface()))
		return true
	})
	protoregistry.GlobalTypes.RangeEnums(func(et protoreflect.EnumType) bool {
		record(et.Descriptor().ParentFile(), reflect.TypeOf(et.New(0)))
		return true
	})

	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(path string) error
	add = func(path string) error {
		if seen[path] {
			return nil
		}
		seen[path] = true
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return fmt.Errorf("%s is not linked in from graft: %w", path, err)
		}
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			if err := add(imports.Get(i).Path()); err != nil {
				return err
			}
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		if fdp.Options == nil {
			fdp.Options = &descriptorpb.FileOptions{}
		}
		if pkg, ok := goPkg[path]; ok {
			fdp.Options.GoPackage = proto.String(pkg)
		} else if p, ok := strings.CutPrefix(fdp.Options.GetGoPackage(), "github.com/tensorflow/tensorflow/tensorflow/go/"); ok {
			fdp.Options.GoPackage = proto.String("github.com/wamuir/graft/tensorflow/" + p)
		} else {
			return fmt.Errorf("%s: no Go package found", path)
		}
		set.File = append(set.File, fdp) // dependencies first, as protoc wants
		return nil
	}
	for _, r := range roots {
		if err := add(r); err != nil {
			fmt.Fprintln(os.Stderr, "descset:", err)
			os.Exit(1)
		}
	}
	out, err := proto.Marshal(set)
	if err != nil {
		fmt.Fprintln(os.Stderr, "descset:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
