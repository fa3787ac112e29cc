package apicheck

import (
	"fmt"
	"go/constant"
	"go/token"
	"go/types"
	"strings"
)

// Difference is one way in which our package fails to offer what etcd's
// offers under the same name.
type Difference struct {
	// Ident is the identifier concerned: "Name", "Type.Field", "Type.Method"
	// or "(*Type).Method".
	Ident string
	// Problem says what is wrong, showing both sides where both exist.
	Problem string
}

func (d Difference) String() string { return d.Ident + ": " + d.Problem }

// Report is the outcome of comparing one package of etcd's with ours.
type Report struct {
	// Etcd and Ours are the import paths that were compared.
	Etcd, Ours string
	// Differences lists every incompatibility, in a stable order (scope
	// order of etcd's names, then fields and methods in declaration order).
	Differences []Difference
	// Extras lists exported API that only ours has. It is allowed and only
	// reported for information.
	Extras []string
}

// OK reports whether ours offers everything etcd's does.
func (r *Report) OK() bool { return len(r.Differences) == 0 }

// String renders the report as one line per difference.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s vs %s: %d difference(s)\n", r.Etcd, r.Ours, len(r.Differences))
	for _, d := range r.Differences {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// Compare checks that every exported identifier of etcd's package exists in
// ours with an identical type once package paths are translated by mapPath
// (which must map etcd's import paths onto ours and leave others alone).
// It never stops at the first difference: the report lists all of them.
func Compare(etcd, ours *types.Package, mapPath func(string) string) *Report {
	c := &comparer{
		rep:     &Report{Etcd: etcd.Path(), Ours: ours.Path()},
		ours:    ours,
		canon:   func(p *types.Package) string { return mapPath(p.Path()) },
		display: func(p *types.Package) string { return p.Name() },
	}
	for _, name := range etcd.Scope().Names() {
		obj := etcd.Scope().Lookup(name)
		if !obj.Exported() {
			continue
		}
		c.object(obj, ours.Scope().Lookup(name))
	}
	for _, name := range ours.Scope().Names() {
		obj := ours.Scope().Lookup(name)
		if obj.Exported() && etcd.Scope().Lookup(name) == nil {
			c.extra("%s %s", kindOf(obj), name)
		}
	}
	return c.rep
}

type comparer struct {
	rep     *Report
	ours    *types.Package
	canon   qualifier
	display qualifier
}

func (c *comparer) diff(ident, format string, args ...any) {
	c.rep.Differences = append(c.rep.Differences, Difference{Ident: ident, Problem: fmt.Sprintf(format, args...)})
}

func (c *comparer) extra(format string, args ...any) {
	c.rep.Extras = append(c.rep.Extras, fmt.Sprintf(format, args...))
}

// same reports whether e (etcd's) and o (ours) are identical modulo path
// mapping.
func (c *comparer) same(e, o types.Type) bool {
	return typeString(e, c.canon) == typeString(o, c.canon)
}

// show renders a type for a human: short package names, no parameter names.
func (c *comparer) show(t types.Type) string { return typeString(t, c.display) }

// mismatch records a difference when e and o are not identical.
func (c *comparer) mismatch(ident, what string, e, o types.Type) {
	if c.same(e, o) {
		return
	}
	es, os := c.show(e), c.show(o)
	if es == os {
		// Same short names, different packages: show the full paths (ours
		// as mapped) so that the difference is visible.
		es, os = typeString(e, c.canon), typeString(o, c.canon)
	}
	c.diff(ident, "%s differs: etcd %s, ours %s", what, es, os)
}

func kindOf(obj types.Object) string {
	switch obj := obj.(type) {
	case *types.Const:
		return "const"
	case *types.Var:
		return "var"
	case *types.Func:
		return "func"
	case *types.TypeName:
		if obj.IsAlias() {
			return "type alias"
		}
		return "type"
	default:
		return fmt.Sprintf("%T", obj)
	}
}

func (c *comparer) object(e, o types.Object) {
	name := e.Name()
	if o == nil {
		c.diff(name, "missing (etcd: %s %s)", kindOf(e), c.show(e.Type()))
		return
	}
	if ek, ok := kindOf(e), kindOf(o); ek != ok {
		c.diff(name, "kind differs: etcd %s, ours %s", ek, ok)
		return
	}
	switch e := e.(type) {
	case *types.Const:
		c.constant(e, o.(*types.Const))
	case *types.Var:
		c.mismatch(name, "type", e.Type(), o.Type())
	case *types.Func:
		c.mismatch(name, "signature", e.Type(), o.Type())
	case *types.TypeName:
		c.typeName(e, o.(*types.TypeName))
	}
}

func (c *comparer) constant(e, o *types.Const) {
	c.mismatch(e.Name(), "type", e.Type(), o.Type())
	ev, ov := e.Val(), o.Val()
	if ev.Kind() != ov.Kind() || !constant.Compare(ev, token.EQL, ov) {
		c.diff(e.Name(), "value differs: etcd %s, ours %s", ev.ExactString(), ov.ExactString())
	}
}

func (c *comparer) typeName(e, o *types.TypeName) {
	name := e.Name()
	if e.IsAlias() {
		c.mismatch(name, "aliased type", types.Unalias(e.Type()), types.Unalias(o.Type()))
		return
	}
	en, _ := e.Type().(*types.Named)
	on, _ := o.Type().(*types.Named)
	if en == nil || on == nil {
		// Only predeclared names are TypeNames without a Named type.
		c.mismatch(name, "type", e.Type(), o.Type())
		return
	}
	c.typeParams(name, en.TypeParams(), on.TypeParams())

	eu, ou := en.Underlying(), on.Underlying()
	es, eIsStruct := eu.(*types.Struct)
	os, oIsStruct := ou.(*types.Struct)
	ei, eIsIface := eu.(*types.Interface)
	oi, oIsIface := ou.(*types.Interface)
	switch {
	case eIsStruct && oIsStruct:
		c.structFields(name, es, os)
	case eIsIface && oIsIface:
		c.interfaceMethods(name, ei, oi)
		return // an interface's methods are its whole method set
	default:
		c.mismatch(name, "underlying type", eu, ou)
	}
	c.methodSets(name, en, on)
}

func (c *comparer) typeParams(name string, e, o *types.TypeParamList) {
	if e.Len() != o.Len() {
		c.diff(name, "number of type parameters differs: etcd %d, ours %d", e.Len(), o.Len())
		return
	}
	for i := 0; i < e.Len(); i++ {
		c.mismatch(name, fmt.Sprintf("constraint of type parameter %d", i), e.At(i).Constraint(), o.At(i).Constraint())
	}
}

// structFields compares exported fields by name, type, tag, embedding and
// order. When etcd's struct has no unexported field, users may write
// unkeyed literals or convert between struct types, so ours must then have
// exactly the same field list; otherwise ours may add fields.
func (c *comparer) structFields(name string, e, o *types.Struct) {
	oursByName := map[string]int{}
	for i := 0; i < o.NumFields(); i++ {
		oursByName[o.Field(i).Name()] = i
	}
	allExported := true
	var eOrder []string
	etcdNames := map[string]bool{}
	for i := 0; i < e.NumFields(); i++ {
		f := e.Field(i)
		if !f.Exported() {
			allExported = false
			continue
		}
		eOrder = append(eOrder, f.Name())
		etcdNames[f.Name()] = true
		ident := name + "." + f.Name()
		j, found := oursByName[f.Name()]
		if !found {
			c.diff(ident, "field missing (etcd: %s)", c.show(f.Type()))
			continue
		}
		g := o.Field(j)
		if f.Embedded() != g.Embedded() {
			c.diff(ident, "embedding differs: etcd embedded=%t, ours embedded=%t", f.Embedded(), g.Embedded())
		}
		c.mismatch(ident, "field type", f.Type(), g.Type())
		if et, ot := e.Tag(i), o.Tag(j); et != ot {
			c.diff(ident, "struct tag differs: etcd `%s`, ours `%s`", et, ot)
		}
	}
	var oOrder []string
	for i := 0; i < o.NumFields(); i++ {
		f := o.Field(i)
		switch {
		case etcdNames[f.Name()]:
			oOrder = append(oOrder, f.Name())
		case allExported:
			c.diff(name+"."+f.Name(), "field not in etcd's struct, whose fields are all exported (breaks unkeyed literals and conversions)")
		case f.Exported():
			c.extra("field %s.%s", name, f.Name())
		}
	}
	if len(oOrder) == len(eOrder) && strings.Join(oOrder, ",") != strings.Join(eOrder, ",") {
		c.diff(name, "field order differs: etcd (%s), ours (%s)", strings.Join(eOrder, ", "), strings.Join(oOrder, ", "))
	}
}

// interfaceMethods compares two interfaces method by method. Ours may not
// add methods: a type written to implement etcd's interface would no longer
// implement ours.
func (c *comparer) interfaceMethods(name string, e, o *types.Interface) {
	problems := len(c.rep.Differences)
	for i := 0; i < e.NumMethods(); i++ {
		m := e.Method(i)
		if !m.Exported() {
			continue
		}
		ident := name + "." + m.Name()
		obj, _, _ := types.LookupFieldOrMethod(o, false, c.ours, m.Name())
		om, _ := obj.(*types.Func)
		if om == nil {
			c.diff(ident, "interface method missing (etcd: %s)", c.show(m.Type()))
			continue
		}
		c.mismatch(ident, "interface method signature", m.Type(), om.Type())
	}
	for i := 0; i < o.NumMethods(); i++ {
		m := o.Method(i)
		if obj, _, _ := types.LookupFieldOrMethod(e, false, m.Pkg(), m.Name()); obj == nil && m.Exported() {
			c.diff(name+"."+m.Name(), "interface method not in etcd's interface (types implementing etcd's would not implement ours)")
		}
	}
	// Unexported methods and type-set terms are not covered above.
	if len(c.rep.Differences) == problems {
		c.mismatch(name, "interface", e, o)
	}
}

// methodSets checks the method sets of T and *T: a method etcd declares on
// a value receiver must be callable on values of ours too.
func (c *comparer) methodSets(name string, e, o *types.Named) {
	for _, ptr := range []bool{false, true} {
		var et, ot types.Type = e, o
		recv := name
		if ptr {
			et, ot = types.NewPointer(e), types.NewPointer(o)
			recv = "(*" + name + ")"
		}
		ems, oms := types.NewMethodSet(et), types.NewMethodSet(ot)
		for i := 0; i < ems.Len(); i++ {
			m := ems.At(i).Obj()
			if !m.Exported() || (ptr && types.NewMethodSet(e).Lookup(m.Pkg(), m.Name()) != nil) {
				continue // value methods were checked in the first round
			}
			ident := recv + "." + m.Name()
			sel := oms.Lookup(c.ours, m.Name())
			if sel == nil {
				if !ptr && types.NewMethodSet(types.NewPointer(o)).Lookup(c.ours, m.Name()) != nil {
					c.diff(ident, "method has a pointer receiver in ours, a value receiver in etcd")
				} else {
					c.diff(ident, "method missing (etcd: %s)", c.show(m.Type()))
				}
				continue
			}
			c.mismatch(ident, "method signature", m.Type(), sel.Obj().Type())
		}
		if !ptr {
			continue
		}
		// *T's method set includes T's, so one pass over it finds every
		// method only ours has.
		for i := 0; i < oms.Len(); i++ {
			m := oms.At(i).Obj()
			if m.Exported() && ems.Lookup(m.Pkg(), m.Name()) == nil {
				c.extra("method %s.%s", name, m.Name())
			}
		}
	}
}
