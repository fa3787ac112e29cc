// Command samename counts the functions of raftkit's root package that carry
// both the receiver type name and the method name of a function in etcd/raft
// v3.6.0's log.go or log_unstable.go (receivers raftLog and unstable). It is
// the yardstick of issue 14: a log layer restated from etcd keeps etcd's
// receivers and names; one designed anew does not.
//
// Usage, from the compat module:
//
//	go run ./cmd/samename [-v] [-root dir] [-etcd dir]
//
// -root defaults to the module root (..), -etcd to etcd/raft v3.6.0 in the
// module cache (found with `go mod download -json`). Test files are skipped on
// our side. -v lists the matches. The count is printed on the last line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// etcdFiles are the files of etcd/raft whose methods count.
var etcdFiles = []string{"log.go", "log_unstable.go"}

func main() {
	verbose := flag.Bool("v", false, "list the matching functions")
	root := flag.String("root", "..", "raftkit's root package directory")
	etcd := flag.String("etcd", "", "etcd/raft v3.6.0's directory (default: from the module cache)")
	flag.Parse()
	if *etcd == "" {
		dir, err := etcdDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "samename:", err)
			os.Exit(2)
		}
		*etcd = dir
	}
	theirs, err := etcdMethods(*etcd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samename:", err)
		os.Exit(2)
	}
	ours, err := ourMethods(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "samename:", err)
		os.Exit(2)
	}
	var same []string
	for key, where := range ours {
		if theirs[key] {
			same = append(same, key+" ("+where+")")
		}
	}
	sort.Strings(same)
	if *verbose {
		for _, s := range same {
			fmt.Println(s)
		}
	}
	fmt.Printf("%d of %d etcd log methods share receiver and name with ours\n", len(same), len(theirs))
}

// etcdDir asks the go command where etcd/raft v3.6.0 is (downloading it if
// need be).
func etcdDir() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", "go.etcd.io/raft/v3@v3.6.0").Output()
	if err != nil {
		return "", fmt.Errorf("locating etcd/raft: %w", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("locating etcd/raft: no directory in %q", out)
	}
	return mod.Dir, nil
}

// etcdMethods returns "receiver.name" for every method in etcd's log files.
func etcdMethods(dir string) (map[string]bool, error) {
	set := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range etcdFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, err
		}
		for key := range methods(f) {
			set[key] = true
		}
	}
	return set, nil
}

// ourMethods returns "receiver.name" -> file for every method in the non-test
// files of the package in dir.
func ourMethods(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil, err
		}
		for key := range methods(f) {
			found[key] = filepath.Base(path)
		}
	}
	return found, nil
}

// methods yields "receiver.name" for each method declared in f.
func methods(f *ast.File) map[string]bool {
	out := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || len(fn.Recv.List) == 0 {
			continue
		}
		out[receiverName(fn.Recv.List[0].Type)+"."+fn.Name.Name] = true
	}
	return out
}

// receiverName strips pointers and type parameters from a receiver type.
func receiverName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return fmt.Sprintf("%T", e)
		}
	}
}
