package apicheck

import (
	"fmt"
	"go/types"
	"strconv"
	"strings"
)

// qualifier names a package inside a type string. For comparison it returns
// the package path after mapping etcd's module onto ours, so that two type
// strings are equal exactly when the types would be identical had both been
// declared in the same module. For display it returns the short package name.
type qualifier func(*types.Package) string

// typeString renders t canonically: parameter names are dropped (they are
// not part of type identity), byte and rune are spelled uint8 and int32,
// aliases are resolved, type parameters are numbered by position, and
// struct tags are kept (they are part of struct identity). Two types from
// different packages are identical modulo path mapping iff their strings are
// equal.
func typeString(t types.Type, q qualifier) string {
	var w typeWriter
	w.q = q
	w.typ(t)
	return w.b.String()
}

type typeWriter struct {
	b strings.Builder
	q qualifier
}

func (w *typeWriter) str(s string) { w.b.WriteString(s) }

func (w *typeWriter) pkgName(pkg *types.Package, name string) {
	if pkg != nil {
		w.str(w.q(pkg))
		w.str(".")
	}
	w.str(name)
}

func (w *typeWriter) typ(t types.Type) {
	switch t := t.(type) {
	case nil:
		w.str("<nil>")
	case *types.Alias:
		w.typ(types.Unalias(t))
	case *types.Basic:
		// byte and rune are aliases: Typ[Kind] gives the canonical name.
		if t.Kind() == types.UnsafePointer {
			w.str("unsafe.Pointer")
			return
		}
		w.str(types.Typ[t.Kind()].Name())
	case *types.Pointer:
		w.str("*")
		w.typ(t.Elem())
	case *types.Slice:
		w.str("[]")
		w.typ(t.Elem())
	case *types.Array:
		fmt.Fprintf(&w.b, "[%d]", t.Len())
		w.typ(t.Elem())
	case *types.Map:
		w.str("map[")
		w.typ(t.Key())
		w.str("]")
		w.typ(t.Elem())
	case *types.Chan:
		w.chanType(t)
	case *types.Signature:
		w.str("func")
		w.signature(t)
	case *types.Tuple:
		w.tuple(t, false)
	case *types.Struct:
		w.structType(t)
	case *types.Interface:
		w.iface(t)
	case *types.Union:
		w.union(t)
	case *types.Named:
		obj := t.Obj()
		w.pkgName(obj.Pkg(), obj.Name())
		if args := t.TypeArgs(); args.Len() > 0 {
			w.str("[")
			for i := 0; i < args.Len(); i++ {
				if i > 0 {
					w.str(", ")
				}
				w.typ(args.At(i))
			}
			w.str("]")
		}
	case *types.TypeParam:
		// Names of type parameters are not part of identity; positions are.
		fmt.Fprintf(&w.b, "$%d", t.Index())
	default:
		// A type kind added to go/types after this was written: fall back on
		// its own rendering, which at worst over-reports a difference.
		w.str(types.TypeString(t, func(p *types.Package) string { return w.q(p) }))
	}
}

// iface writes an interface as its full method set (explicit and embedded,
// sorted by go/types) followed by any embedded types that restrict its type
// set (unions, comparable, non-interface types).
func (w *typeWriter) iface(t *types.Interface) {
	w.str("interface{")
	n := 0
	sep := func() {
		if n > 0 {
			w.str("; ")
		}
		n++
	}
	for i := 0; i < t.NumMethods(); i++ {
		m := t.Method(i)
		sep()
		if m.Exported() {
			w.str(m.Name())
		} else {
			w.pkgName(m.Pkg(), m.Name())
		}
		w.signature(m.Type().(*types.Signature))
	}
	for i := 0; i < t.NumEmbeddeds(); i++ {
		e := t.EmbeddedType(i)
		if ei, ok := e.Underlying().(*types.Interface); ok && ei.IsMethodSet() {
			continue // its methods are already listed above
		}
		sep()
		w.typ(e)
	}
	w.str("}")
}

// signature writes type parameters, parameters and results; never the
// receiver, which the caller accounts for separately.
func (w *typeWriter) signature(s *types.Signature) {
	if tps := s.TypeParams(); tps.Len() > 0 {
		w.typeParams(tps)
	}
	w.tuple(s.Params(), s.Variadic())
	if r := s.Results(); r.Len() > 0 {
		w.str(" ")
		w.tuple(r, false)
	}
}

// chanType writes a channel type with its direction.
func (w *typeWriter) chanType(t *types.Chan) {
	switch t.Dir() {
	case types.SendRecv:
		w.str("chan (")
	case types.SendOnly:
		w.str("chan<- (")
	case types.RecvOnly:
		w.str("<-chan (")
	}
	w.typ(t.Elem())
	w.str(")")
}

// structType writes a struct type: fields in order, with tags.
func (w *typeWriter) structType(t *types.Struct) {
	w.str("struct{")
	for i := 0; i < t.NumFields(); i++ {
		if i > 0 {
			w.str("; ")
		}
		f := t.Field(i)
		if f.Embedded() {
			w.str("embedded ")
		} else if f.Exported() {
			w.str(f.Name())
			w.str(" ")
		} else {
			w.pkgName(f.Pkg(), f.Name())
			w.str(" ")
		}
		w.typ(f.Type())
		if tag := t.Tag(i); tag != "" {
			w.str(" ")
			w.str(strconv.Quote(tag))
		}
	}
	w.str("}")
}

// union writes a constraint's union of terms.
func (w *typeWriter) union(t *types.Union) {
	for i := 0; i < t.Len(); i++ {
		if i > 0 {
			w.str(" | ")
		}
		term := t.Term(i)
		if term.Tilde() {
			w.str("~")
		}
		w.typ(term.Type())
	}
}

func (w *typeWriter) typeParams(tps *types.TypeParamList) {
	w.str("[")
	for i := 0; i < tps.Len(); i++ {
		if i > 0 {
			w.str(", ")
		}
		tp := tps.At(i)
		fmt.Fprintf(&w.b, "$%d ", tp.Index())
		w.typ(tp.Constraint())
	}
	w.str("]")
}

func (w *typeWriter) tuple(t *types.Tuple, variadic bool) {
	w.str("(")
	for i := 0; i < t.Len(); i++ {
		if i > 0 {
			w.str(", ")
		}
		v := t.At(i).Type()
		if variadic && i == t.Len()-1 {
			w.str("...")
			v = v.(*types.Slice).Elem()
		}
		w.typ(v)
	}
	w.str(")")
}
