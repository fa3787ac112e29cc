// Package apicheck compares the exported API of an etcd/raft v3.6 package
// with the raftkit package of the same name, using go/types: every exported
// const, var, func and type of etcd's must exist in ours with an identical
// type once etcd's import paths are mapped onto ours, constants must have
// the same values, and struct fields must agree in type, tag and order.
package apicheck

import (
	"fmt"
	"go/types"
	"strings"

	"golang.org/x/tools/go/packages"
)

const (
	// EtcdModule is the module path of the reference implementation.
	EtcdModule = "go.etcd.io/raft/v3"
	// OursModule is raftkit's module path.
	OursModule = "github.com/raftkit/raft"
)

// Root names the module's root package (package raft) in the package lists
// taken by Check and cmd/apidiff; other packages are named by their path
// inside the module, such as "raftpb" or "confchange".
const Root = "raft"

// EtcdPath returns the import path of etcd's package with the given name.
func EtcdPath(name string) string { return joinPath(EtcdModule, name) }

// OursPath returns the import path of our package with the given name.
func OursPath(name string) string { return joinPath(OursModule, name) }

func joinPath(module, name string) string {
	if name == Root || name == "" || name == "." {
		return module
	}
	return module + "/" + name
}

// MapPath translates an import path under etcd's module into the matching
// path under ours and returns any other path unchanged.
func MapPath(path string) string {
	if path == EtcdModule {
		return OursModule
	}
	if rest, ok := strings.CutPrefix(path, EtcdModule+"/"); ok {
		return OursModule + "/" + rest
	}
	return path
}

// Result is the outcome for one package pair: a report, or the reason no
// comparison could be made (a package that does not exist or does not
// compile).
type Result struct {
	Name   string
	Report *Report
	Err    error
}

// Check loads etcd's and our package for each name and compares them. dir
// must lie inside a module that requires both etcd's module and ours (the
// compat module does). Every name gets a Result, in the order given.
func Check(dir string, names ...string) ([]Result, error) {
	var patterns []string
	for _, n := range names {
		patterns = append(patterns, EtcdPath(n), OursPath(n))
	}
	loaded, err := Load(dir, patterns...)
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(names))
	for _, n := range names {
		res := Result{Name: n}
		etcd, eerr := loaded.get(EtcdPath(n))
		ours, oerr := loaded.get(OursPath(n))
		switch {
		case eerr != nil:
			res.Err = eerr
		case oerr != nil:
			res.Err = oerr
		default:
			res.Report = Compare(etcd, ours, MapPath)
		}
		results = append(results, res)
	}
	return results, nil
}

// Loaded holds type-checked packages by import path, and the reason for
// each path that could not be loaded.
type Loaded struct {
	pkgs map[string]*types.Package
	errs map[string]error
}

func (l *Loaded) get(path string) (*types.Package, error) {
	if err, bad := l.errs[path]; bad {
		return nil, err
	}
	if p := l.pkgs[path]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("package %s: not loaded", path)
}

// Load type-checks the packages named by import paths, resolving them from
// the module that contains dir. A package that is missing or broken is not
// an error of Load: it is recorded and reported when asked for, so that one
// unfinished package does not hide the comparison of the others.
func Load(dir string, paths ...string) (*Loaded, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedImports,
		Dir:  dir,
	}
	pkgs, err := packages.Load(cfg, paths...)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", strings.Join(paths, " "), err)
	}
	l := &Loaded{pkgs: map[string]*types.Package{}, errs: map[string]error{}}
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			var msgs []string
			for _, e := range p.Errors {
				msgs = append(msgs, e.Error())
			}
			l.errs[p.PkgPath] = fmt.Errorf("package %s does not load:\n\t%s", p.PkgPath, strings.Join(msgs, "\n\t"))
			continue
		}
		if p.Types == nil || p.IllTyped {
			l.errs[p.PkgPath] = fmt.Errorf("package %s: no type information", p.PkgPath)
			continue
		}
		l.pkgs[p.PkgPath] = p.Types
	}
	return l, nil
}
