// Command protoparse is the protoc front end of scripts/genproto.sh, so that
// regenerating raftpb needs only Go. It parses .proto files with
// github.com/bufbuild/protocompile, builds the CodeGeneratorRequest protoc
// would send a plugin, runs the plugin binary named by -plugin on it, and
// writes the files the plugin returns under -out.
//
// Usage:
//
//	protoparse -plugin path/to/protoc-gen-gofast -out dir -I dir1 -I dir2 file.proto
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// importPaths collects repeated -I flags, in order, as protoc does.
type importPaths []string

func (p *importPaths) String() string     { return strings.Join(*p, ":") }
func (p *importPaths) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var imports importPaths
	plugin := flag.String("plugin", "", "path of the protoc plugin binary to run")
	out := flag.String("out", ".", "directory to write the generated files into")
	param := flag.String("param", "", "parameter string passed to the plugin")
	flag.Var(&imports, "I", "import path (repeatable)")
	flag.Parse()
	if *plugin == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: protoparse -plugin BIN -out DIR [-I DIR]... FILE.proto...")
		os.Exit(2)
	}
	if err := run(*plugin, *out, *param, imports, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "protoparse:", err)
		os.Exit(1)
	}
}

func run(plugin, out, param string, imports, files []string) error {
	req, err := buildRequest(imports, files, param)
	if err != nil {
		return err
	}
	resp, err := runPlugin(plugin, req)
	if err != nil {
		return err
	}
	for _, f := range resp.GetFile() {
		if f.GetInsertionPoint() != "" {
			return fmt.Errorf("%s: insertion points are not supported", f.GetName())
		}
		path := filepath.Join(out, filepath.FromSlash(f.GetName()))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(f.GetContent()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// buildRequest parses files (named relative to an import path, as protoc
// takes them) and returns the request protoc would send: the files to
// generate with their source info (comments), preceded by every file they
// import, dependencies first.
func buildRequest(imports, files []string, param string) (*pluginpb.CodeGeneratorRequest, error) {
	comp := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: imports,
		}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	results, err := comp.Compile(context.Background(), files...)
	if err != nil {
		return nil, err
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: files}
	if param != "" {
		req.Parameter = proto.String(param)
	}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor, keepSource bool)
	add = func(fd protoreflect.FileDescriptor, keepSource bool) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor, false)
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		if !keepSource {
			fdp.SourceCodeInfo = nil
		}
		req.ProtoFile = append(req.ProtoFile, fdp)
	}
	for _, r := range results {
		add(r.(linker.Result), true)
	}
	return req, nil
}

// runPlugin hands req to the plugin on stdin and reads its answer from
// stdout, as protoc does.
func runPlugin(plugin string, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	cmd := exec.Command(plugin)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", plugin, err)
	}
	resp := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
		return nil, fmt.Errorf("plugin %s: bad response: %w", plugin, err)
	}
	if resp.Error != nil {
		return nil, errors.New(resp.GetError())
	}
	return resp, nil
}
