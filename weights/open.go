package weights

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Open opens one checkpoint file, recognising the format from its content: a PyTorch zip
// checkpoint (.bin/.pt/.pth), a sharded set's *.index.json, or a safetensors file. A
// folder is opened with OpenDir.
func Open(path string) (Store, error) {
	if strings.HasSuffix(path, ".index.json") {
		return openSharded(path)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return OpenDir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	var magic [8]byte
	n, err := io.ReadFull(f, magic[:])
	f.Close()
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	head := magic[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return openPyTorch(path)
	case len(head) >= 2 && head[0] == 0x80 && head[1] <= 5:
		return nil, fmt.Errorf("weights: %s: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current PyTorch or convert it to safetensors: %w", path, ErrFormat)
	case len(head) > 0 && (head[0] == '{' || head[0] == '['):
		return nil, fmt.Errorf("weights: %s: a JSON file, not a checkpoint (open the model folder, or the *.index.json of a sharded set): %w", path, ErrFormat)
	}
	return openSafetensors(path)
}

// OpenDir opens the checkpoint in a Hugging Face model folder, preferring safetensors as
// transformers does: model.safetensors, model.safetensors.index.json, pytorch_model.bin,
// pytorch_model.bin.index.json.
func OpenDir(dir string) (Store, error) {
	for _, name := range []string{
		"model.safetensors",
		"model.safetensors.index.json",
		"pytorch_model.bin",
		"pytorch_model.bin.index.json",
	} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return Open(p)
		}
	}
	return nil, fmt.Errorf("weights: %s: no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json: %w", dir, fs.ErrNotExist)
}
