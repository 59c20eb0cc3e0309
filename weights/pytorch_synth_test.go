package weights

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func f16Bytes(v ...float32) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToF16(x))
	}
	return b
}

func bf16Bytes(v ...float32) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToBF16(x))
	}
	return b
}

// TestPyTorchLayouts covers what the fixtures do not: another archive prefix, a nested
// {"model_state_dict": ...}, DataParallel "module." names, TF-era gamma/beta, storage
// offsets, a transposed (non-contiguous) view, half and bfloat16 storages, and a tensor
// shared under two names.
func TestPyTorchLayouts(t *testing.T) {
	p := newPickle()
	p.op('}').str("epoch").int(7).op('s')
	p.str("model_state_dict").op('}').mark()
	p.str("module.enc.LayerNorm.gamma").tensor("FloatStorage", "0", 12, 0, []int{4}, []int{1})
	p.op('q', 1) // memoised like torch does, fetched again below for the tied alias
	p.str("module.enc.LayerNorm.beta").tensor("FloatStorage", "0", 12, 4, []int{4}, []int{1})
	p.str("module.enc.dense.weight").tensor("FloatStorage", "0", 12, 0, []int{4, 3}, []int{1, 4})
	p.str("module.half").tensor("HalfStorage", "1", 3, 1, []int{2}, []int{1})
	p.str("module.bf").tensor("BFloat16Storage", "2", 2, 0, []int{1, 2}, []int{2, 1})
	p.str("module.tied").op('h', 1)
	p.str("module.scalar").tensor("LongStorage", "3", 1, 0, []int{}, []int{})
	p.op('u', 's')
	pkl := p.stop()
	storages := map[string][]byte{
		"0": f32Bytes(seq(12)...),
		"1": f16Bytes(1, -2.5, 65504),
		"2": bf16Bytes(3, -0.15625),
		"3": {42, 0, 0, 0, 0, 0, 0, 0},
	}
	path := writeTemp(t, "model.pt", zipCheckpoint(t, "archive", pkl, storages))
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"bf", "enc.LayerNorm.bias", "enc.LayerNorm.weight", "enc.dense.weight", "half", "scalar", "tied"}
	if got := s.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	check := func(name string, shape []int, want ...float32) {
		t.Helper()
		v, err := Expect(s, name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	check("enc.LayerNorm.weight", []int{4}, 0.5, 1.5, 2.5, 3.5)
	check("enc.LayerNorm.bias", []int{4}, 4.5, 5.5, 6.5, 7.5)
	// storage [0..12) viewed as a [4,3] tensor with strides (1,4): element (i,j) = storage[i+4j].
	check("enc.dense.weight", []int{4, 3}, 0.5, 4.5, 8.5, 1.5, 5.5, 9.5, 2.5, 6.5, 10.5, 3.5, 7.5, 11.5)
	check("half", []int{2}, -2.5, 65504)
	check("bf", []int{1, 2}, 3, -0.15625)
	check("tied", []int{4}, 0.5, 1.5, 2.5, 3.5)
	if v, shape, err := s.Int64("scalar"); err != nil || len(shape) != 0 || !reflect.DeepEqual(v, []int64{42}) {
		t.Errorf("scalar = %v %v %v", v, shape, err)
	}
	if raw, info, _ := s.Raw("half"); info.DType != F16 || len(raw) != 4 {
		t.Errorf("half raw: %s %d bytes", info.DType, len(raw))
	}
	if bits, shape, err := Uint16s(s, "bf", BF16); err != nil || !reflect.DeepEqual(shape, []int{1, 2}) ||
		BF16ToF32(bits[0]) != 3 || BF16ToF32(bits[1]) != -0.15625 {
		t.Errorf("Uint16s(bf) = %v %v %v", bits, shape, err)
	}
	if _, _, err := Uint16s(s, "half", BF16); err == nil {
		t.Error("Uint16s accepted F16 as BF16")
	}
	if got := Aliases(s); !reflect.DeepEqual(got, [][]string{{"enc.LayerNorm.weight", "tied"}}) {
		t.Errorf("Aliases = %v", got)
	}
}

// hostilePickle replaces the global a checkpoint calls; nothing is executed, and the error
// names the forbidden global.
func TestPyTorchRejectsCode(t *testing.T) {
	cases := map[string][]byte{
		"os.system": newPickle().global("os", "system").str("touch /tmp/pwned").op(0x85, 'R').stop(),
		"posix.system": newPickle().op('}').str("w").
			global("posix", "system").str("id").op(0x85, 'R').op('s').stop(),
		"builtins.eval": newPickle().op(0x8c, 8).raw("builtins").op(0x8c, 4).raw("eval").
			op(0x93).str("1").op(0x85, 'R').stop(),
		"torch.load": newPickle().global("torch", "load").str("x").op(0x85, 'R').stop(),
		"subclass":   newPickle().global("torch._utils", "_rebuild_tensor_v2").op(')', 0x81).stop(),
	}
	for name, pkl := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeTemp(t, "pytorch_model.bin", zipCheckpoint(t, "pytorch_model", pkl, nil))
			_, err := Open(path)
			if err == nil {
				t.Fatal("hostile pickle loaded")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should wrap ErrFormat and name the file", err)
			}
			if name != "subclass" && !strings.Contains(err.Error(), "forbidden global "+strings.Replace(name, "torch.load", "torch.load", 1)) {
				t.Errorf("error %q does not name the forbidden global", err)
			}
		})
	}
}

func TestPyTorchHostileStorage(t *testing.T) {
	one := func(class, key string, numel, off int, size, stride []int) []byte {
		return newPickle().op('}').str("w").tensor(class, key, numel, off, size, stride).op('s').stop()
	}
	cases := []struct {
		name     string
		pkl      []byte
		storages map[string][]byte
		want     string
	}{
		{"numel larger than file", one("FloatStorage", "0", 1<<40, 0, []int{4}, []int{1}),
			map[string][]byte{"0": f32Bytes(1, 2, 3, 4)}, "claims"},
		{"view past storage", one("FloatStorage", "0", 4, 2, []int{4}, []int{1}),
			map[string][]byte{"0": f32Bytes(1, 2, 3, 4)}, "reaches element"},
		{"stride past storage", one("FloatStorage", "0", 4, 0, []int{2, 2}, []int{3, 1}),
			map[string][]byte{"0": f32Bytes(1, 2, 3, 4)}, "reaches element"},
		{"stride-0 expansion beyond budget", one("FloatStorage", "0", 1, 0, []int{1 << 20, 1 << 20}, []int{0, 0}),
			map[string][]byte{"0": f32Bytes(1)}, "more memory"},
		{"overflowing size", one("FloatStorage", "0", 1, 0, []int{1 << 30, 1 << 30, 1 << 30}, []int{0, 0, 0}),
			map[string][]byte{"0": f32Bytes(1)}, "too large"},
		{"missing storage", one("FloatStorage", "7", 4, 0, []int{4}, []int{1}),
			map[string][]byte{"0": f32Bytes(1, 2, 3, 4)}, "no pytorch_model/data/7"},
		{"ragged storage", one("FloatStorage", "0", 1, 0, []int{1}, []int{1}),
			map[string][]byte{"0": {1, 2, 3, 4, 5}}, "whole number"},
		{"traversal key", one("FloatStorage", "../x", 1, 0, []int{1}, []int{1}),
			nil, "bad storage key"},
		{"not a state dict", newPickle().ints(1, 2).stop(), nil, "not a state dict"},
		{"no tensors", newPickle().op('}').str("epoch").int(1).op('s').stop(), nil, "no tensors found"},
		{"no stop", newPickle().op('}').Bytes(), nil, "without STOP"},
		{"underflow", newPickle().op('s', '.').stop(), nil, "underflow"},
		{"bad memo", newPickle().op('h', 9, '.').stop(), nil, "never stored"},
		{"huge string", append(newPickle().op('X', 0xff, 0xff, 0xff, 0x7f).Bytes(), '.'), nil, "runs past the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "pytorch_model.bin", zipCheckpoint(t, "pytorch_model", c.pkl, c.storages))
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("hostile checkpoint loaded")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want ErrFormat, the file name and %q", err, c.want)
			}
		})
	}
}

// TestPyTorchCorrupted truncates and damages a real checkpoint: every variant is an error,
// never a panic.
func TestPyTorchCorrupted(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(fixturesDir(), "bert_seq_cls", "pytorch_model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []int{0, 3, 4, 100, len(orig) / 2, len(orig) - 23, len(orig) - 1} {
		p := filepath.Join(dir, "trunc.bin")
		os.WriteFile(p, orig[:n], 0o644)
		if s, err := Open(p); err == nil {
			s.Close()
			t.Errorf("truncated to %d bytes: loaded", n)
		}
	}
	// A flipped bit inside a storage is caught by the CRC.
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0x10
	p := filepath.Join(dir, "flip.bin")
	os.WriteFile(p, bad, 0o644)
	if s, err := Open(p); err == nil {
		s.Close()
		t.Error("corrupted storage loaded")
	} else if !strings.Contains(err.Error(), "CRC") {
		t.Errorf("corrupted storage: %v", err)
	}
}

func TestPyTorchLegacyNameCollision(t *testing.T) {
	pkl := newPickle().op('}').mark().
		str("ln.gamma").tensor("FloatStorage", "0", 1, 0, []int{1}, []int{1}).
		str("ln.weight").tensor("FloatStorage", "0", 1, 0, []int{1}, []int{1}).op('u').stop()
	path := writeTemp(t, "x.bin", zipCheckpoint(t, "x", pkl, map[string][]byte{"0": f32Bytes(1)}))
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "both map to") {
		t.Errorf("colliding legacy names: %v", err)
	}
}
