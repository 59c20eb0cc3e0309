package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// maxHeaderLen bounds the JSON header as the reference implementation does (100 MB), so a
// forged length cannot make the reader allocate or scan without limit.
const maxHeaderLen = 100_000_000

const metadataKey = "__metadata__"

// openSafetensors maps path and validates it completely before any tensor is exposed.
func openSafetensors(path string) (*tensorStore, error) {
	buf, unmap, err := loadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	s, err := parseSafetensors(path, buf)
	if err != nil {
		unmap()
		return nil, err
	}
	s.closers = append(s.closers, unmap)
	return s, nil
}

type stHeaderEntry struct {
	DType       *string   `json:"dtype"`
	Shape       *[]int    `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

// parseSafetensors validates a whole safetensors image and returns entries whose data
// slices alias buf. Every failure names the file (and the tensor where there is one).
func parseSafetensors(path string, buf []byte) (*tensorStore, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: %s: safetensors: %s: %w", path, fmt.Sprintf(format, args...), ErrFormat)
	}
	if len(buf) < 8 {
		return nil, fail("file is %d bytes, shorter than the 8-byte header length", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > maxHeaderLen {
		return nil, fail("header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n > uint64(len(buf)-8) {
		return nil, fail("header length %d runs past the end of the %d-byte file", n, len(buf))
	}
	if n < 2 {
		return nil, fail("header length %d is too short for a JSON object", n)
	}
	header := buf[8 : 8+n]
	data := buf[8+n:]
	if header[0] != '{' {
		return nil, fail("header does not start with '{'")
	}

	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fail("header JSON: %v", err)
	}
	s := newTensorStore(path)
	type span struct {
		name       string
		begin, end uint64
	}
	var spans []span
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail("header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fail("header JSON: key is not a string")
		}
		if seen[name] {
			return nil, fail("tensor %q: duplicate key in header", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail("header JSON: value of %q: %v", name, err)
		}
		if name == metadataKey {
			var md map[string]string
			if err := json.Unmarshal(raw, &md); err != nil {
				return nil, fail("__metadata__ must map strings to strings: %v", err)
			}
			s.metadata = md
			continue
		}
		var he stHeaderEntry
		if err := json.Unmarshal(raw, &he); err != nil {
			return nil, fail("tensor %q: %v", name, err)
		}
		if he.DType == nil || he.Shape == nil || he.DataOffsets == nil {
			return nil, fail("tensor %q: entry needs dtype, shape and data_offsets", name)
		}
		dt := DType(*he.DType)
		if !dt.Known() {
			return nil, fail("tensor %q: unknown dtype %q", name, *he.DType)
		}
		offs := *he.DataOffsets
		if len(offs) != 2 {
			return nil, fail("tensor %q: data_offsets has %d values, want 2", name, len(offs))
		}
		begin, end := offs[0], offs[1]
		if begin > end {
			return nil, fail("tensor %q: data_offsets [%d, %d] are reversed", name, begin, end)
		}
		if end > uint64(len(data)) {
			return nil, fail("tensor %q: data_offsets [%d, %d] run past the %d data bytes", name, begin, end, len(data))
		}
		count, err := numel(*he.Shape)
		if err != nil {
			return nil, fail("tensor %q: %v", name, err)
		}
		if uint64(count)*uint64(dt.Size()) != end-begin {
			return nil, fail("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d",
				name, *he.Shape, dt, uint64(count)*uint64(dt.Size()), begin, end, end-begin)
		}
		s.add(&entry{
			info: TensorInfo{Name: name, DType: dt, Shape: append([]int{}, (*he.Shape)...)},
			n:    count,
			data: data[begin:end:end],
			file: path,
		})
		spans = append(spans, span{name, begin, end})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail("header JSON: %v", err)
	}
	for _, c := range header[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, fail("header has trailing bytes after the JSON object")
		}
	}

	// The format packs tensors back to back: sorted by offset, each must begin exactly where
	// the previous one ended, and the last must end at the end of the file.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos uint64
	prev := ""
	for _, sp := range spans {
		if sp.begin < pos {
			return nil, fail("tensor %q: data_offsets [%d, %d] overlap tensor %q", sp.name, sp.begin, sp.end, prev)
		}
		if sp.begin > pos {
			return nil, fail("tensor %q: gap of %d bytes before data_offsets [%d, %d]", sp.name, sp.begin-pos, sp.begin, sp.end)
		}
		pos = sp.end
		prev = sp.name
	}
	if pos != uint64(len(data)) {
		return nil, fail("tensors cover %d data bytes but the file holds %d", pos, len(data))
	}
	s.finish()
	return s, nil
}

// WriteSafetensors writes tensors (sorted by name) and optional metadata to path in the
// safetensors format, header padded with spaces to a multiple of 8 so that data starts
// aligned. The file is written to a temporary name and renamed, so a reader never sees
// half a file.
func WriteSafetensors(path string, tensors []NamedTensor, metadata map[string]string) error {
	hdr, ts, err := encodeHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("weights: %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	_, werr := w.Write(hdr)
	for _, t := range ts {
		if werr == nil {
			_, werr = w.Write(t.Data)
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("weights: %s: %w", path, werr)
	}
	return nil
}

// EncodeSafetensors returns the bytes WriteSafetensors would write.
func EncodeSafetensors(tensors []NamedTensor, metadata map[string]string) ([]byte, error) {
	hdr, ts, err := encodeHeader(tensors, metadata)
	if err != nil {
		return nil, err
	}
	out := hdr
	for _, t := range ts {
		out = append(out, t.Data...)
	}
	return out, nil
}

// encodeHeader validates tensors and returns the 8-byte length, the padded JSON header and
// the tensors in the order their data must follow.
func encodeHeader(tensors []NamedTensor, metadata map[string]string) ([]byte, []NamedTensor, error) {
	ts := append([]NamedTensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	var hdr bytes.Buffer
	enc := json.NewEncoder(&hdr)
	enc.SetEscapeHTML(false)
	writeJSON := func(v any) {
		enc.Encode(v) // strings, ints and string maps cannot fail to encode
		hdr.Truncate(hdr.Len() - 1)
	}
	hdr.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		hdr.WriteString(`"` + metadataKey + `":`)
		writeJSON(metadata) // encoding/json sorts map keys
		first = false
	}
	var off uint64
	for i, t := range ts {
		if i > 0 && ts[i-1].Name == t.Name {
			return nil, nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if !t.DType.Known() {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, err := numel(t.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
		if n*t.DType.Size() != len(t.Data) {
			return nil, nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, have %d", t.Name, t.Shape, t.DType, n*t.DType.Size(), len(t.Data))
		}
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		writeJSON(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr.WriteString(`:{"dtype":`)
		writeJSON(string(t.DType))
		hdr.WriteString(`,"shape":`)
		writeJSON(shape)
		fmt.Fprintf(&hdr, `,"data_offsets":[%d,%d]}`, off, off+uint64(len(t.Data)))
		off += uint64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := make([]byte, 8, 8+hdr.Len())
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	return append(out, hdr.Bytes()...), ts, nil
}
