package weights

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestFixturesPyTorch: every fixture's pytorch_model.bin holds bit-identical tensors to its
// model.safetensors; extra names are allowed only as tied aliases of a tensor that is there.
func TestFixturesPyTorch(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			pt, err := Open(filepath.Join(dir, "pytorch_model.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer pt.Close()
			st, err := Open(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			checkStore(t, pt)
			aliasOf := map[string][]string{}
			for _, g := range Aliases(pt) {
				for _, n := range g {
					aliasOf[n] = g
				}
			}
			for _, name := range st.Names() {
				a, ai, err := st.Raw(name)
				if err != nil {
					t.Fatal(err)
				}
				b, bi, err := pt.Raw(name)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if ai.DType != bi.DType || !equalShape(ai.Shape, bi.Shape) || !bytes.Equal(a, b) {
					t.Errorf("%s: safetensors %s%v and pytorch %s%v differ", name, ai.DType, ai.Shape, bi.DType, bi.Shape)
				}
			}
			for _, name := range pt.Names() {
				if _, ok := st.Info(name); ok {
					continue
				}
				found := false
				for _, other := range aliasOf[name] {
					if _, ok := st.Info(other); ok {
						a, _, _ := st.Raw(other)
						b, _, _ := pt.Raw(name)
						found = bytes.Equal(a, b)
					}
				}
				if !found {
					t.Errorf("%s is in pytorch_model.bin but neither in model.safetensors nor tied to a tensor there", name)
				}
			}
		})
	}
}
