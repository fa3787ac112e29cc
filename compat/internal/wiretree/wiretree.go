// Package wiretree converts values of raftpb's message types to and from a
// JSON form that keeps every distinction the protobuf encoding keeps: nil
// and empty byte slices and lists are different, uint64s are exact (carried
// as decimal strings), and no field is ever omitted. encoding/json with the
// structs' own tags cannot serve here: their omitempty options merge nil
// and empty.
//
// It works by reflection on field names alone, so one copy serves both
// etcd's and raftkit's message types: a tree encoded from one decodes into
// the other whenever the two declare the same fields (which the apicheck
// package verifies).
package wiretree

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// Marshal encodes v, a struct or a pointer to one, as a tree.
func Marshal(v any) ([]byte, error) {
	t, err := toTree(reflect.ValueOf(v))
	if err != nil {
		return nil, err
	}
	return json.Marshal(t)
}

// Unmarshal decodes a tree made by Marshal into v, which must be a non-nil
// pointer. Fields of the tree that v lacks, or fields of v the tree lacks,
// are errors: both sides are expected to have exactly the same shape.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var t any
	if err := dec.Decode(&t); err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("wiretree: Unmarshal needs a non-nil pointer, got %T", v)
	}
	return fromTree(t, rv.Elem())
}

// toTree maps v onto JSON-ready values: a struct becomes a map by field
// name, nil slices and pointers become nil, []byte becomes base64 text.
func toTree(v reflect.Value) (any, error) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return toTree(v.Elem())
	case reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				return nil, fmt.Errorf("wiretree: %s has unexported field %s", v.Type(), f.Name)
			}
			sub, err := toTree(v.Field(i))
			if err != nil {
				return nil, err
			}
			m[f.Name] = sub
		}
		return m, nil
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return base64.StdEncoding.EncodeToString(v.Bytes()), nil
		}
		list := make([]any, v.Len())
		for i := range list {
			sub, err := toTree(v.Index(i))
			if err != nil {
				return nil, err
			}
			list[i] = sub
		}
		return list, nil
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Int32, reflect.Int64, reflect.Int:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Bool:
		return v.Bool(), nil
	default:
		return nil, fmt.Errorf("wiretree: unsupported kind %s (%s)", v.Kind(), v.Type())
	}
}

func fromTree(t any, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer:
		if t == nil {
			v.SetZero()
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := fromTree(t, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return structFromTree(t, v)
	case reflect.Slice:
		return sliceFromTree(t, v)
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		s, ok := t.(string)
		if !ok {
			return fmt.Errorf("wiretree: %s wants a decimal string, got %T", v.Type(), t)
		}
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
		return nil
	case reflect.Int32, reflect.Int64, reflect.Int:
		s, ok := t.(string)
		if !ok {
			return fmt.Errorf("wiretree: %s wants a decimal string, got %T", v.Type(), t)
		}
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
		return nil
	case reflect.Bool:
		b, ok := t.(bool)
		if !ok {
			return fmt.Errorf("wiretree: %s wants a bool, got %T", v.Type(), t)
		}
		v.SetBool(b)
		return nil
	default:
		return fmt.Errorf("wiretree: unsupported kind %s (%s)", v.Kind(), v.Type())
	}
}

// structFromTree fills struct v from object t, which must name every field.
func structFromTree(t any, v reflect.Value) error {
	m, ok := t.(map[string]any)
	if !ok {
		return fmt.Errorf("wiretree: %s wants an object, got %T", v.Type(), t)
	}
	if len(m) != v.NumField() {
		return fmt.Errorf("wiretree: %s has %d fields, tree has %d", v.Type(), v.NumField(), len(m))
	}
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		sub, found := m[name]
		if !found {
			return fmt.Errorf("wiretree: tree lacks %s.%s", v.Type(), name)
		}
		if err := fromTree(sub, v.Field(i)); err != nil {
			return fmt.Errorf("%s.%s: %w", v.Type(), name, err)
		}
	}
	return nil
}

// sliceFromTree fills slice v from t: a base64 string for bytes, else a list.
func sliceFromTree(t any, v reflect.Value) error {
	if t == nil {
		v.SetZero()
		return nil
	}
	if v.Type().Elem().Kind() == reflect.Uint8 {
		s, ok := t.(string)
		if !ok {
			return fmt.Errorf("wiretree: bytes want a string, got %T", t)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return err
		}
		v.SetBytes(append(make([]byte, 0, len(b)), b...)) // never nil
		return nil
	}
	list, ok := t.([]any)
	if !ok {
		return fmt.Errorf("wiretree: %s wants a list, got %T", v.Type(), t)
	}
	s := reflect.MakeSlice(v.Type(), len(list), len(list))
	for i, sub := range list {
		if err := fromTree(sub, s.Index(i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}
