package xlnet

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/clinfer/clinfer/weights"
)

var floatSlice = reflect.TypeOf([]float32(nil))

// loadTensors fills the []float32 fields of the struct dst points to from s, following each
// field's `ckpt` tag (name relative to prefix; nested structs extend the prefix) and `shape`
// tag (dimension names resolved through dims). Every missing or mis-shaped tensor is
// reported by name, not only the first. Data is copied: the model outlives the store.
func loadTensors(s weights.Store, prefix string, dst any, dims map[string]int) error {
	var errs []error
	loadStruct(s, prefix, reflect.ValueOf(dst).Elem(), dims, &errs)
	return errors.Join(errs...)
}

func loadStruct(s weights.Store, prefix string, v reflect.Value, dims map[string]int, errs *[]error) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("ckpt")
		if !ok {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			loadStruct(s, prefix+name, v.Field(i), dims, errs)
			continue
		}
		if f.Type != floatSlice {
			*errs = append(*errs, fmt.Errorf("xlnet: field %s: ckpt tag on %v", f.Name, f.Type))
			continue
		}
		var shape []int
		for _, d := range strings.Split(f.Tag.Get("shape"), ",") {
			n, ok := dims[d]
			if !ok {
				*errs = append(*errs, fmt.Errorf("xlnet: %s%s: unknown dimension %q", prefix, name, d))
				return
			}
			shape = append(shape, n)
		}
		data, err := weights.Expect(s, prefix+name, shape...)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		v.Field(i).Set(reflect.ValueOf(append([]float32(nil), data...)))
	}
}

func has(s weights.Store, name string) bool {
	_, ok := s.Info(name)
	return ok
}
