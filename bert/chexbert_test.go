package bert

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

// pickler writes the few pickle (protocol 2) opcodes torch.save uses for a state dict.
type pickler struct{ bytes.Buffer }

func (p *pickler) op(b ...byte) { p.Write(b) }
func (p *pickler) str(s string) {
	p.op('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
}
func (p *pickler) int(v int) {
	p.op('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(v))
}
func (p *pickler) global(module, name string) { p.WriteString("c" + module + "\n" + name + "\n") }
func (p *pickler) tuple(v []int) {
	p.op('(')
	for _, x := range v {
		p.int(x)
	}
	p.op('t')
}

// tensor writes torch._utils._rebuild_tensor_v2(storage, 0, shape, contiguous stride, False, OrderedDict()).
func (p *pickler) tensor(key string, shape []int) {
	numel := 1
	for _, d := range shape {
		numel *= d
	}
	stride := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		stride[i], s = s, s*shape[i]
	}
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(')
	p.op('(')
	p.str("storage")
	p.global("torch", "FloatStorage")
	p.str(key)
	p.str("cpu")
	p.int(numel)
	p.op('t', 'Q') // persistent id
	p.int(0)
	p.tuple(shape)
	p.tuple(stride)
	p.op(0x89) // False
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	p.op('t', 'R')
}

// writeCheXbertPth writes tensors as CheXbert saves them: torch.save({"epoch": ...,
// "model_state_dict": DataParallel(model).state_dict()}), so every name starts with "module.".
func writeCheXbertPth(t *testing.T, path string, ts []weights.NamedTensor) {
	t.Helper()
	var p pickler
	p.op(0x80, 2, '}', '(')
	p.str("epoch")
	p.int(3)
	p.str("model_state_dict")
	p.op('}', '(')
	storages := map[string][]byte{}
	for i, x := range ts {
		key := fmt.Sprint(i)
		p.str("module." + x.Name)
		p.tensor(key, x.Shape)
		storages[key] = x.Data
	}
	p.op('u', 'u', '.')
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		w, err := z.CreateHeader(&zip.FileHeader{Name: "chexbert/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add("data.pkl", p.Bytes())
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("data/"+k, storages[k])
	}
	add("version", []byte("3\n"))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The CheXbert checkpoint layout itself ({"model_state_dict": {"module.bert...",
// "module.linear_heads.N..."}} in a .pth) loads into the same labeler as the plain names.
func TestCheXbertCheckpointLayout(t *testing.T) {
	var saved []weights.NamedTensor
	dir := copyCheckpoint(t, "bert_seq_cls",
		func(s string) string { return strings.Replace(s, `"BertForSequenceClassification"`, `"BertModel"`, 1) },
		func(ts []weights.NamedTensor) []weights.NamedTensor {
			var out []weights.NamedTensor
			for _, x := range ts {
				if !strings.HasPrefix(x.Name, "classifier.") {
					out = append(out, x)
				}
			}
			for i := 0; i < 14; i++ {
				n := 4
				if i == 13 {
					n = 2
				}
				w, b := make([]float32, n*32), make([]float32, n)
				for j := range w {
					w[j] = float32((i*131+j*17)%23-11) / 40
				}
				for j := range b {
					b[j] = float32(j-i) / 10
				}
				out = append(out, f32Tensor(fmt.Sprintf("linear_heads.%d.weight", i), []int{n, 32}, w),
					f32Tensor(fmt.Sprintf("linear_heads.%d.bias", i), []int{n}, b))
			}
			saved = out
			return out
		})
	pth := filepath.Join(t.TempDir(), "chexbert.pth")
	writeCheXbertPth(t, pth, saved)
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := weights.Open(pth)
	if err != nil {
		t.Fatal(err)
	}
	fromPth, err := LoadFromStore(cfg, s)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	fromST, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fromPth.Head() != HeadMulti || len(fromPth.HeadSizes()) != 14 {
		t.Fatalf("from .pth: head %v with sizes %v", fromPth.Head(), fromPth.HeadSizes())
	}
	in, _ := NewBatch([][]int{{101, 5, 6, 7, 102}}, nil, nil)
	a, err := fromPth.Classify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fromST.Classify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(a[0]) != 54 {
		t.Fatalf("%d logits, want 13*4+2", len(a[0]))
	}
	for i := range a[0] {
		if a[0][i] != b[0][i] {
			t.Fatalf("logit %d: %g from .pth, %g from safetensors", i, a[0][i], b[0][i])
		}
	}
}
