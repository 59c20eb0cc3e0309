package nn

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/clinfer/clinfer/weights"
)

// ExpectFunc reads one float tensor of a given shape from a store (weights.Expect, or a model's
// variant that also accepts legacy names).
type ExpectFunc func(s weights.Store, name string, shape []int) ([]float32, error)

// LoadTensors fills the []float32 fields of the struct dst points to from s. Each field's
// `ckpt` tag is its checkpoint name relative to prefix and its `shape` tag lists symbolic
// dimensions resolved through dims ("hidden,inter" -> [dims["hidden"], dims["inter"]]).
// Nested struct fields with a `ckpt` tag extend the prefix; their `dims` tag
// ("out=inter,in=hidden") renames the enclosing dimensions for them. Every missing or
// mis-shaped tensor is reported, not just the first, and each error names the tensor; errors
// about the tags themselves start with pkg. expect nil means weights.Expect.
//
// The data is copied: the model outlives the store, whose views may be a memory map.
func LoadTensors(s weights.Store, pkg, prefix string, dst any, dims map[string]int, expect ExpectFunc) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%s: loadTensors needs a pointer to a struct, got %T", pkg, dst)
	}
	if expect == nil {
		expect = func(s weights.Store, name string, shape []int) ([]float32, error) {
			return weights.Expect(s, name, shape...)
		}
	}
	var errs []error
	loadStruct(s, pkg, prefix, v.Elem(), dims, expect, &errs)
	return errors.Join(errs...)
}

var floatSlice = reflect.TypeOf([]float32(nil))

func loadStruct(s weights.Store, pkg, prefix string, v reflect.Value, dims map[string]int, expect ExpectFunc, errs *[]error) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("ckpt")
		if !ok {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Struct:
			sub, err := aliasDims(f.Tag.Get("dims"), dims)
			if err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %s%s: %w", pkg, prefix, name, err))
				continue
			}
			loadStruct(s, pkg, prefix+name, v.Field(i), sub, expect, errs)
		case f.Type == floatSlice:
			shape, err := resolveShape(f.Tag.Get("shape"), dims)
			if err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %s%s: %w", pkg, prefix, name, err))
				continue
			}
			data, err := expect(s, prefix+name, shape)
			if err != nil {
				*errs = append(*errs, err)
				continue
			}
			v.Field(i).Set(reflect.ValueOf(append([]float32(nil), data...)))
		default:
			*errs = append(*errs, fmt.Errorf("%s: field %s: ckpt tag on %v", pkg, f.Name, f.Type))
		}
	}
}

// aliasDims applies a `dims` tag such as "out=inter,in=hidden" to a nested struct: its
// symbolic dimensions out and in mean the enclosing struct's inter and hidden.
func aliasDims(tag string, dims map[string]int) (map[string]int, error) {
	if tag == "" {
		return dims, nil
	}
	sub := make(map[string]int, len(dims)+2)
	for k, v := range dims {
		sub[k] = v
	}
	for _, kv := range strings.Split(tag, ",") {
		alias, target, ok := strings.Cut(strings.TrimSpace(kv), "=")
		d, known := dims[target]
		if !ok || !known {
			return nil, fmt.Errorf("bad dims tag entry %q", kv)
		}
		sub[alias] = d
	}
	return sub, nil
}

func resolveShape(tag string, dims map[string]int) ([]int, error) {
	if tag == "" {
		return nil, errors.New("no shape tag")
	}
	parts := strings.Split(tag, ",")
	shape := make([]int, len(parts))
	for i, p := range parts {
		d, ok := dims[strings.TrimSpace(p)]
		if !ok {
			return nil, fmt.Errorf("unknown dimension %q", p)
		}
		shape[i] = d
	}
	return shape, nil
}
