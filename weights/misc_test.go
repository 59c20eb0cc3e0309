package weights

import (
	"archive/zip"
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestOpenSniffsFormats(t *testing.T) {
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"legacy torch": {[]byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20}, "legacy"},
		"json":         {[]byte(`{"architectures": ["BertModel"]}`), "a JSON file"},
		"zip garbage":  {[]byte("PK\x03\x04garbage"), "not a readable zip"},
	} {
		p := writeTemp(t, "x.bin", c.data)
		if _, err := Open(p); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// Deflated members (a checkpoint re-zipped by another tool) load within the memory budget;
// one that would inflate beyond it is refused before inflating.
func TestPyTorchDeflated(t *testing.T) {
	pkl := newPickle().op('}').str("w").tensor("FloatStorage", "0", 1<<16, 0, []int{1 << 16}, []int{1}).op('s').stop()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{"a/data.pkl": pkl, "a/data/0": make([]byte, 4<<16)} {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		w.Write(data)
	}
	zw.Close()
	s, err := parsePyTorch("deflated", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Expect(s, "w", 1<<16); err != nil || len(v) != 1<<16 || v[12345] != 0 {
		t.Fatalf("deflated tensor: %v", err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	z := &zipArchive{path: "bomb", buf: buf.Bytes(), files: map[string]*zip.File{}, budget: 1 << 10, cache: map[string][]byte{}}
	for _, f := range zr.File {
		z.files[f.Name] = f
	}
	if _, err := z.entry("a/data/0"); err == nil || !strings.Contains(err.Error(), "inflates to") {
		t.Errorf("over-budget member: %v", err)
	}
}

func TestPyTorchStateDictVariants(t *testing.T) {
	storages := map[string][]byte{"0": f32Bytes(1, 2)}
	tensor := func(p *pk) *pk { return p.tensor("FloatStorage", "0", 2, 0, []int{2}, []int{1}) }
	// {"state_dict": OrderedDict([("enc.w", Parameter(tensor))])} via _rebuild_parameter and
	// _rebuild_from_type_v2, the way newer torch pickles parameters and tensor subclasses.
	p := newPickle().op('}').str("state_dict")
	p.global("collections", "OrderedDict").op(')', 'R').mark()
	p.str("enc.w").global("torch._utils", "_rebuild_parameter").mark()
	tensor(p).op(0x88).global("collections", "OrderedDict").op(')', 'R').op('t', 'R')
	p.str("enc.v").global("torch._tensor", "_rebuild_from_type_v2").mark()
	p.global("torch._utils", "_rebuild_tensor_v2").global("torch", "Tensor")
	p.mark().mark().str("storage").global("torch", "FloatStorage").str("0").str("cuda:0").int(2).op('t', 'Q')
	p.int(1).ints(1).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R').op('t')
	p.op('}', 't', 'R')
	p.op('u').op('}').str("_metadata").op('}', 's', 'b', 's') // SETITEMS, BUILD(_metadata), SETITEM
	s, err := parsePyTorch("variants", zipCheckpoint(t, "archive", p.stop(), storages))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"enc.v", "enc.w"}) {
		t.Fatalf("names %v", got)
	}
	if v, _ := Expect(s, "enc.v", 1); !reflect.DeepEqual(v, []float32{2}) {
		t.Errorf("enc.v = %v", v)
	}
	if v, _ := Expect(s, "enc.w", 2); !reflect.DeepEqual(v, []float32{1, 2}) {
		t.Errorf("enc.w = %v", v)
	}
}
