package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func stFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsHostile(t *testing.T) {
	data8 := make([]byte, 8)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "shorter than", nil},
		{"short", "shorter than", []byte{1, 2, 3}},
		{"huge header length", "exceeds", binary.LittleEndian.AppendUint64(nil, 1<<62)},
		{"header past end", "runs past the end", binary.LittleEndian.AppendUint64(nil, 1000)},
		{"not json", "header JSON", stFile(`{"a":`, nil)},
		{"not an object", "does not start", stFile(`["a"]`, nil)},
		{"trailing garbage", "trailing bytes", stFile(`{} x`, nil)},
		{"unknown dtype", `tensor "w": unknown dtype "F128"`, stFile(`{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}`, data8)},
		{"missing field", `tensor "w": entry needs`, stFile(`{"w":{"dtype":"F32","shape":[2]}}`, data8)},
		{"negative dim", `tensor "w"`, stFile(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, data8)},
		{"size mismatch", `tensor "w": shape [3] of F32 needs 12 bytes`, stFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data8)},
		{"offsets past file", `tensor "w": data_offsets [0, 16] run past`, stFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data8)},
		{"reversed offsets", `reversed`, stFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, data8)},
		{"overlap", `overlap`, stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8)},
		{"gap", `gap of 4 bytes`, stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8)},
		{"unclaimed tail", `cover 4 data bytes`, stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, data8)},
		{"duplicate", `tensor "a": duplicate`, stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8)},
		{"bad metadata", `__metadata__`, stFile(`{"__metadata__":{"format":1}}`, nil)},
		{"overflowing shape", `tensor "w"`, stFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}`, data8)},
		{"offsets not integers", `tensor "w"`, stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}}`, data8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "model.safetensors", c.file)
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("hostile file loaded")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want ErrFormat, the file name and %q", err, c.want)
			}
		})
	}
}

// TestSafetensorsTruncated cuts a real file at many lengths: always a clean error.
func TestSafetensorsTruncated(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(fixturesDir(), "bert_seq_cls", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(orig); n += 1 + n/3 {
		if _, err := parseSafetensors("cut", orig[:n]); err == nil {
			t.Errorf("truncated to %d bytes: parsed", n)
		}
	}
}

func TestSafetensorsEdgeCases(t *testing.T) {
	// Zero-size tensors may share an offset with anything; a scalar has shape [].
	file := stFile(`{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"z":{"dtype":"BF16","shape":[0],"data_offsets":[0,0]}}  `, f32Bytes(2.5))
	s, err := parseSafetensors("edge", file)
	if err != nil {
		t.Fatal(err)
	}
	if v, shape, err := s.Float32("s"); err != nil || len(shape) != 0 || !reflect.DeepEqual(v, []float32{2.5}) {
		t.Errorf("scalar: %v %v %v", v, shape, err)
	}
	if v, shape, err := s.Float32("e"); err != nil || len(v) != 0 || !reflect.DeepEqual(shape, []int{0, 3}) {
		t.Errorf("empty: %v %v %v", v, shape, err)
	}
	// An unaligned F32 tensor is copied rather than viewed.
	file = stFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}`, append([]byte{7}, f32Bytes(1, -3)...))
	s, err = parseSafetensors("unaligned", file)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Float32("w"); err != nil || !reflect.DeepEqual(v, []float32{1, -3}) {
		t.Errorf("unaligned: %v %v", v, err)
	}
}

func TestWriteSafetensorsRoundTrip(t *testing.T) {
	for _, dir := range fixtureDirs(t) {
		src := filepath.Join(dir, "reference.safetensors")
		s, err := Open(src)
		if err != nil {
			t.Fatal(err)
		}
		var ts []NamedTensor
		for _, n := range s.Names() {
			raw, info, _ := s.Raw(n)
			ts = append(ts, NamedTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw})
		}
		out := filepath.Join(t.TempDir(), "out.safetensors")
		md := map[string]string{"format": "pt", "note": `<x & "y">`}
		if err := WriteSafetensors(out, ts, md); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		if hl := binary.LittleEndian.Uint64(b); hl%8 != 0 {
			t.Errorf("header length %d not a multiple of 8", hl)
		}
		r, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Names(), s.Names()) {
			t.Fatalf("names differ after round trip")
		}
		for _, n := range s.Names() {
			a, ai, _ := s.Raw(n)
			b, bi, _ := r.Raw(n)
			if !bytes.Equal(a, b) || !reflect.DeepEqual(ai, bi) {
				t.Errorf("%s: %s differs after round trip", src, n)
			}
		}
		if got := r.(*tensorStore).Metadata(); !reflect.DeepEqual(got, md) {
			t.Errorf("metadata %v, want %v", got, md)
		}
		r.Close()
		s.Close()
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	dir := t.TempDir()
	for name, ts := range map[string][]NamedTensor{
		"duplicate":  {{Name: "a", DType: F32, Shape: []int{1}, Data: f32Bytes(1)}, {Name: "a", DType: F32, Shape: []int{1}, Data: f32Bytes(1)}},
		"size":       {{Name: "a", DType: F32, Shape: []int{2}, Data: f32Bytes(1)}},
		"dtype":      {{Name: "a", DType: "F8", Shape: []int{1}, Data: []byte{1}}},
		"reserved":   {{Name: "__metadata__", DType: U8, Shape: []int{1}, Data: []byte{1}}},
		"negative":   {{Name: "a", DType: U8, Shape: []int{-1}, Data: nil}},
		"unwritable": nil,
	} {
		p := filepath.Join(dir, name+".safetensors")
		if name == "unwritable" {
			p = filepath.Join(dir, "no", "such", "dir", "x.safetensors")
		}
		if err := WriteSafetensors(p, ts, nil); err == nil {
			t.Errorf("%s: written", name)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: left a file behind", name)
		}
	}
}

func TestDTypeConversions(t *testing.T) {
	// Every half value against an independent float64 evaluation of its definition.
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		sign, exp, man := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && man == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: %v, want NaN", h, f)
			}
			continue
		case exp == 0:
			want = math.Ldexp(float64(man), -24)
		default:
			want = math.Ldexp(1+float64(man)/1024, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != (sign == 1) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
		if bf := uint16(h); F32ToBF16(BF16ToF32(bf)) != bf && !math.IsNaN(float64(BF16ToF32(bf))) {
			t.Fatalf("bf16 %#04x does not round-trip", bf)
		}
	}
	// The table-driven bulk path agrees with the scalar one on every pattern, aligned or not.
	all := make([]byte, 1+2<<16)
	for h := 0; h < 1<<16; h++ {
		binary.LittleEndian.PutUint16(all[1+2*h:], uint16(h))
	}
	for _, data := range [][]byte{all[1:], all[:2<<16]} {
		aligned := &data[0] == &all[1]
		for _, dt := range []DType{F16, BF16} {
			v, err := toFloat32(dt, data, 1<<16)
			if err != nil {
				t.Fatal(err)
			}
			for h := range v {
				bits := binary.LittleEndian.Uint16(data[2*h:])
				want := F16ToF32(bits)
				if dt == BF16 {
					want = BF16ToF32(bits)
				}
				if math.Float32bits(v[h]) != math.Float32bits(want) {
					t.Fatalf("%s bulk (aligned=%v) %#04x: %v, want %v", dt, aligned, bits, v[h], want)
				}
			}
		}
	}
	// Rounding to nearest even at the half-way points.
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {65520, 0x7c00}, {65519, 0x7bff},
		{float32(math.Ldexp(1, -25)), 0}, {float32(math.Ldexp(1.5, -25)), 1}, {float32(math.Ldexp(3, -25)), 2},
	} {
		if got := F32ToF16(c.in); got != c.want {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := F32ToBF16(1 + 1.0/256); got != 0x3f80 {
		t.Errorf("F32ToBF16 tie = %#04x, want 0x3f80", got)
	}
	if got := F32ToBF16(1 + 3.0/256); got != 0x3f82 {
		t.Errorf("F32ToBF16 tie = %#04x, want 0x3f82", got)
	}
	// Widening of every integer dtype.
	ints := []NamedTensor{
		{Name: "i8", DType: I8, Shape: []int{2}, Data: []byte{0xff, 5}},
		{Name: "u16", DType: U16, Shape: []int{1}, Data: []byte{0xff, 0xff}},
		{Name: "i16", DType: I16, Shape: []int{1}, Data: []byte{0xfe, 0xff}},
		{Name: "i32", DType: I32, Shape: []int{1}, Data: []byte{0xfd, 0xff, 0xff, 0xff}},
		{Name: "u32", DType: U32, Shape: []int{1}, Data: []byte{0xff, 0xff, 0xff, 0xff}},
		{Name: "b", DType: BOOL, Shape: []int{2}, Data: []byte{1, 0}},
		{Name: "u64", DType: U64, Shape: []int{1}, Data: []byte{0, 0, 0, 0, 0, 0, 0, 0x80}},
		{Name: "f64", DType: F64, Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1))},
	}
	buf, err := EncodeSafetensors(ints, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseSafetensors("ints", buf)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int64{"i8": {-1, 5}, "u16": {65535}, "i16": {-2}, "i32": {-3}, "u32": {1<<32 - 1}, "b": {1, 0}} {
		if got, _, err := s.Int64(name); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
	}
	if _, _, err := s.Int64("u64"); err == nil {
		t.Error("U64 overflow not reported")
	}
	if v, _, err := s.Float32("f64"); err != nil || v[0] != float32(0.1) {
		t.Errorf("f64: %v %v", v, err)
	}
	if _, _, err := s.Float32("i32"); err == nil {
		t.Error("Float32 of an integer tensor succeeded")
	}
}

// TestConcurrentReads is meant for -race: many goroutines read one store at once.
func TestConcurrentReads(t *testing.T) {
	for _, file := range []string{"model.safetensors", "pytorch_model.bin"} {
		s, err := Open(filepath.Join(fixturesDir(), "qwen15_causal_lm", file))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := Open(filepath.Join(fixturesDir(), "qwen15_causal_lm", "reference.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for it := 0; it < 5; it++ {
					for _, n := range s.Names() {
						v, shape, err := s.Float32(n)
						if err != nil {
							errs <- err
							return
						}
						if _, err := Expect(s, n, shape...); err != nil {
							errs <- err
							return
						}
						var sum float32
						for _, x := range v {
							sum += x
						}
						_ = sum
						s.Info(n)
					}
					for _, n := range ref.Names() {
						if info, _ := ref.Info(n); info.DType == I64 {
							if _, _, err := ref.Int64(n); err != nil {
								errs <- err
								return
							}
						}
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		s.Close()
		ref.Close()
	}
}
