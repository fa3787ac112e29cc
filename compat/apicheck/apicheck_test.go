package apicheck

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"testing"
)

// comparedPackages lists the packages whose API must match etcd/raft v3.6's:
// every package of etcd's module.
var comparedPackages = []string{
	"raftpb",
	"quorum",
	"tracker",
	"confchange",
	Root,
	"rafttest",
}

// TestAPIMatchesEtcd is the compatibility gate: it fails on any exported
// identifier of etcd's packages that ours lacks or declares differently, and
// on any of our packages that does not load.
func TestAPIMatchesEtcd(t *testing.T) {
	results, err := Check(".", comparedPackages...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if r.Err != nil {
				t.Fatalf("%s: %v", r.Name, r.Err)
			}
			if !r.Report.OK() {
				t.Errorf("%s", r.Report)
			}
			for _, x := range r.Report.Extras {
				t.Logf("only ours: %s", x)
			}
		})
	}
}

// TestEtcdAgainstItself makes sure the checker reports nothing when both
// sides are the same package, for every package it will ever compare: a
// spurious difference here would be a bug in the checker, not in raftkit.
func TestEtcdAgainstItself(t *testing.T) {
	names := []string{"raftpb", "quorum", "tracker", "confchange", Root, "rafttest"}
	var paths []string
	for _, n := range names {
		paths = append(paths, EtcdPath(n))
	}
	loaded, err := Load(".", paths...)
	if err != nil {
		t.Fatal(err)
	}
	identity := func(p string) string { return p }
	for _, p := range paths {
		pkg, err := loaded.get(p)
		if err != nil {
			t.Fatal(err)
		}
		rep := Compare(pkg, pkg, identity)
		if !rep.OK() || len(rep.Extras) > 0 {
			t.Errorf("%s against itself: %s extras %v", p, rep, rep.Extras)
		}
	}
}

// TestMissingPackageNamed checks that a package ours does not have yet fails
// with a message naming it instead of comparing against nothing.
func TestMissingPackageNamed(t *testing.T) {
	results, err := Check(".", "no-such-package")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Err == nil {
		t.Fatalf("want one failed result, got %+v", results)
	}
	if msg := results[0].Err.Error(); !strings.Contains(msg, "no-such-package") {
		t.Errorf("error does not name the package: %s", msg)
	}
}

func TestMapPath(t *testing.T) {
	for in, want := range map[string]string{
		"go.etcd.io/raft/v3":             "github.com/raftkit/raft",
		"go.etcd.io/raft/v3/raftpb":      "github.com/raftkit/raft/raftpb",
		"go.etcd.io/raft/v3/x/y":         "github.com/raftkit/raft/x/y",
		"go.etcd.io/raft/v30":            "go.etcd.io/raft/v30",
		"github.com/gogo/protobuf/proto": "github.com/gogo/protobuf/proto",
	} {
		if got := MapPath(in); got != want {
			t.Errorf("MapPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The fixture: a reference package and an imitation of it that gets a
// number of things wrong on purpose, and some right in ways the checker must
// accept (parameter names, byte for uint8, references to its own types).
const fixtureRef = `package p

import "io"

const Answer = 42
const Kind0, Kind1 Kind = 0, 1
const Name = "p"
const Gone = 1

var Default Opts
var Out io.Writer

type Kind int32

func (k Kind) String() string { return "" }

type Opts struct {
	Size   int    ` + "`json:\"size\"`" + `
	Label  string ` + "`json:\"label\"`" + `
	Data   []byte
	Nested *Opts
}

func (o *Opts) Reset()            {}
func (o Opts) Valid() bool        { return true }
func (o Opts) Clone() Opts        { return o }

type Sealed struct {
	ID     uint64
	hidden int
	Tail   string
}

type Wide struct {
	A, B int
}

type Reader interface {
	Read(p []byte) (n int, err error)
	Close() error
}

type Small interface{ Name() string }

type Alias = Opts
type Alias2 = Opts

type Box[T comparable] struct{ V T }

func New(size int, opts ...Opts) (*Opts, error) { return nil, nil }
func Use(b []byte, ch <-chan Kind, m map[string]Kind) {}
func Pick[T Kind | ~int](x T) T { return x }
func Same(data []byte) rune { return 0 }
`

const fixtureOurs = `package p

import "io"

const Answer = 43
const Kind0, Kind1 Kind = 0, 2
const Name = 7

var Default *Opts
var Out io.Reader

type Kind int64

func (k *Kind) String() string { return "" }

type Opts struct {
	Label  string ` + "`json:\"name\"`" + `
	Size   int    ` + "`json:\"size\"`" + `
	Data   string
	Nested *Opts
}

func (o *Opts) Reset()            {}
func (o Opts) Valid() int         { return 0 }
func (o Opts) Extra()             {}

type Sealed struct {
	extra bool
	Tail  string
	ID    uint64
	More  int
}

type Wide struct {
	A, B int
	C    int
}

type Reader interface {
	Read(p []byte) (n int, err error)
	Flush() error
}

type Small interface{ Name() string; String() string }

type Alias Opts
type Alias2 = Sealed

type Box[T any] struct{ V T }

func New(n int, opts []Opts) (*Opts, error) { return nil, nil }
func Use(b []byte, ch chan Kind, m map[string]Kind) {}
func Pick[T Kind | int](x T) T { return x }
func Same(buf []uint8) int32 { return 0 }
func Bonus() {}
`

func typeCheck(t *testing.T, path, src string) *types.Package {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fixture.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check(path, fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// TestFixtureDifferences proves that the checker finds every kind of
// difference it claims to, all in one report, and nothing else.
func TestFixtureDifferences(t *testing.T) {
	ref := typeCheck(t, "example.com/ref/p", fixtureRef)
	ours := typeCheck(t, "example.com/ours/p", fixtureOurs)
	mapPath := func(p string) string {
		if p == "example.com/ref/p" {
			return "example.com/ours/p"
		}
		return p
	}
	rep := Compare(ref, ours, mapPath)
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.String())
	}
	want := []string{
		"Alias: kind differs: etcd type alias, ours type",
		"Alias2: aliased type differs: etcd p.Opts, ours p.Sealed",
		"Answer: value differs: etcd 42, ours 43",
		"Box: constraint of type parameter 0 differs: etcd comparable, ours interface{}",
		"Default: type differs: etcd p.Opts, ours *p.Opts",
		"Gone: missing (etcd: const untyped int)",
		"Kind: underlying type differs: etcd int32, ours int64",
		"Kind.String: method has a pointer receiver in ours, a value receiver in etcd",
		"Kind1: value differs: etcd 1, ours 2",
		"Name: type differs: etcd untyped string, ours untyped int",
		"Name: value differs: etcd \"p\", ours 7",
		"New: signature differs: etcd func(int, ...p.Opts) (*p.Opts, error), ours func(int, []p.Opts) (*p.Opts, error)",
		"Opts.Label: struct tag differs: etcd `json:\"label\"`, ours `json:\"name\"`",
		"Opts.Data: field type differs: etcd []uint8, ours string",
		"Opts: field order differs: etcd (Size, Label, Data, Nested), ours (Label, Size, Data, Nested)",
		"Opts.Clone: method missing (etcd: func() (p.Opts))",
		"Opts.Valid: method signature differs: etcd func() (bool), ours func() (int)",
		"Out: type differs: etcd io.Writer, ours io.Reader",
		"Pick: signature differs: etcd func[$0 interface{p.Kind | ~int}]($0) ($0), ours func[$0 interface{p.Kind | int}]($0) ($0)",
		"Reader.Close: interface method missing (etcd: func() (error))",
		"Reader.Flush: interface method not in etcd's interface (types implementing etcd's would not implement ours)",
		"Sealed: field order differs: etcd (ID, Tail), ours (Tail, ID)",
		"Small.String: interface method not in etcd's interface (types implementing etcd's would not implement ours)",
		"Use: signature differs: etcd func([]uint8, <-chan (p.Kind), map[string]p.Kind), ours func([]uint8, chan (p.Kind), map[string]p.Kind)",
		"Wide.C: field not in etcd's struct, whose fields are all exported (breaks unkeyed literals and conversions)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("differences:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantExtras := []string{"func Bonus", "method Opts.Extra", "field Sealed.More"}
	slices.Sort(wantExtras)
	gotExtras := slices.Sorted(slices.Values(rep.Extras))
	if !slices.Equal(gotExtras, wantExtras) {
		t.Errorf("extras %v, want %v", gotExtras, wantExtras)
	}
}
