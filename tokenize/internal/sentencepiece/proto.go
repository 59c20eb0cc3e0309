package sentencepiece

import (
	"errors"
	"fmt"
	"math"
	"os"
	"unicode/utf8"
)

// PieceType is SentencePiece's ModelProto.SentencePiece.Type.
type PieceType int32

// Piece types, numbered as in sentencepiece_model.proto.
const (
	Normal      PieceType = 1
	Unknown     PieceType = 2
	Control     PieceType = 3
	UserDefined PieceType = 4
	Unused      PieceType = 5
	Byte        PieceType = 6
)

func (t PieceType) String() string {
	switch t {
	case Normal:
		return "NORMAL"
	case Unknown:
		return "UNKNOWN"
	case Control:
		return "CONTROL"
	case UserDefined:
		return "USER_DEFINED"
	case Unused:
		return "UNUSED"
	case Byte:
		return "BYTE"
	}
	return fmt.Sprintf("PieceType(%d)", int32(t))
}

// ModelType is TrainerSpec.model_type.
type ModelType int32

// Model types, numbered as in sentencepiece_model.proto.
const (
	ModelUnigram ModelType = 1
	ModelBPE     ModelType = 2
	ModelWord    ModelType = 3
	ModelChar    ModelType = 4
)

func (t ModelType) String() string {
	switch t {
	case ModelUnigram:
		return "UNIGRAM"
	case ModelBPE:
		return "BPE"
	case ModelWord:
		return "WORD"
	case ModelChar:
		return "CHAR"
	}
	return fmt.Sprintf("ModelType(%d)", int32(t))
}

// ProtoPiece is one ModelProto.SentencePiece entry. Score is the float32 stored in the file.
type ProtoPiece struct {
	Piece string
	Score float32
	Type  PieceType
}

// TrainerSpec holds the TrainerSpec fields a tokenizer needs. Absent fields take the proto
// defaults, because SentencePiece itself reads them that way.
type TrainerSpec struct {
	ModelType                 ModelType
	VocabSize                 int32
	ByteFallback              bool
	UnkID, BosID              int32
	EosID, PadID              int32
	UnkPiece, BosPiece        string
	EosPiece, PadPiece        string
	UnkSurface                string
	SplitDigits               bool
	TreatWhitespaceAsSuffix   bool
	AllowWhitespaceOnlyPieces bool
}

// NormalizerSpec is ModelProto.NormalizerSpec (or denormalizer_spec).
type NormalizerSpec struct {
	Name                   string
	PrecompiledCharsmap    []byte
	AddDummyPrefix         bool
	RemoveExtraWhitespaces bool
	EscapeWhitespaces      bool
	NormalizationRuleTSV   string
}

// ModelProto is a parsed SentencePiece `.model` file.
type ModelProto struct {
	Pieces          []ProtoPiece
	Trainer         TrainerSpec
	Normalizer      NormalizerSpec
	HasDenormalizer bool
	Denormalizer    NormalizerSpec
}

// ErrMalformed is wrapped by every parse error, so callers can tell a bad file from an I/O error.
var ErrMalformed = errors.New("sentencepiece: malformed model")

func defaultTrainerSpec() TrainerSpec {
	return TrainerSpec{
		ModelType:  ModelUnigram,
		VocabSize:  8000,
		UnkID:      0,
		BosID:      1,
		EosID:      2,
		PadID:      -1,
		UnkPiece:   "<unk>",
		BosPiece:   "<s>",
		EosPiece:   "</s>",
		PadPiece:   "<pad>",
		UnkSurface: " \u2047 ",
	}
}

func defaultNormalizerSpec() NormalizerSpec {
	return NormalizerSpec{AddDummyPrefix: true, RemoveExtraWhitespaces: true, EscapeWhitespaces: true}
}

// LoadModelProto reads and parses a SentencePiece `.model` file.
func LoadModelProto(path string) (*ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sentencepiece: %w", err)
	}
	m, err := ParseModelProto(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseModelProto decodes a serialized ModelProto. Unknown fields are skipped (as protobuf
// requires); every length is bounds-checked, and structural errors wrap ErrMalformed.
// Piece strings must be valid UTF-8, since everything downstream indexes them as text.
func ParseModelProto(data []byte) (*ModelProto, error) {
	m := &ModelProto{Trainer: defaultTrainerSpec(), Normalizer: defaultNormalizerSpec()}
	d := wireDecoder{buf: data, ctx: "ModelProto"}
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return nil, err
		}
		switch {
		case field == 1 && wt == wireBytes:
			b, err := d.bytes()
			if err != nil {
				return nil, err
			}
			p, err := parsePiece(b, len(m.Pieces))
			if err != nil {
				return nil, err
			}
			m.Pieces = append(m.Pieces, p)
		case field == 2 && wt == wireBytes:
			b, err := d.bytes()
			if err != nil {
				return nil, err
			}
			if err := parseTrainerSpec(b, &m.Trainer); err != nil {
				return nil, err
			}
		case field == 3 && wt == wireBytes:
			b, err := d.bytes()
			if err != nil {
				return nil, err
			}
			if err := parseNormalizerSpec(b, &m.Normalizer, "normalizer_spec"); err != nil {
				return nil, err
			}
		case field == 5 && wt == wireBytes:
			b, err := d.bytes()
			if err != nil {
				return nil, err
			}
			m.HasDenormalizer = true
			m.Denormalizer = defaultNormalizerSpec()
			if err := parseNormalizerSpec(b, &m.Denormalizer, "denormalizer_spec"); err != nil {
				return nil, err
			}
		default:
			if err := d.skip(field, wt); err != nil {
				return nil, err
			}
		}
	}
	if len(m.Pieces) == 0 {
		return nil, fmt.Errorf("%w: no pieces", ErrMalformed)
	}
	return m, nil
}

func parsePiece(b []byte, index int) (ProtoPiece, error) {
	p := ProtoPiece{Type: Normal}
	d := wireDecoder{buf: b, ctx: fmt.Sprintf("pieces[%d]", index)}
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return p, err
		}
		switch {
		case field == 1 && wt == wireBytes:
			s, err := d.bytes()
			if err != nil {
				return p, err
			}
			if !utf8.Valid(s) {
				return p, fmt.Errorf("%w: pieces[%d].piece is not valid UTF-8", ErrMalformed, index)
			}
			p.Piece = string(s)
		case field == 2 && wt == wireFixed32:
			v, err := d.fixed32()
			if err != nil {
				return p, err
			}
			p.Score = math.Float32frombits(v)
		case field == 3 && wt == wireVarint:
			v, err := d.varint()
			if err != nil {
				return p, err
			}
			p.Type = PieceType(int32(v))
		default:
			if err := d.skip(field, wt); err != nil {
				return p, err
			}
		}
	}
	switch p.Type {
	case Normal, Unknown, Control, UserDefined, Unused, Byte:
	default:
		return p, fmt.Errorf("%w: pieces[%d] has unknown type %d", ErrMalformed, index, int32(p.Type))
	}
	if math.IsNaN(float64(p.Score)) || math.IsInf(float64(p.Score), 0) {
		return p, fmt.Errorf("%w: pieces[%d] has non-finite score", ErrMalformed, index)
	}
	return p, nil
}

func parseTrainerSpec(b []byte, t *TrainerSpec) error {
	d := wireDecoder{buf: b, ctx: "trainer_spec"}
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return err
		}
		var ip *int32
		var sp *string
		var bp *bool
		switch field {
		case 3:
			v, err := d.expectVarint(field, wt)
			if err != nil {
				return err
			}
			t.ModelType = ModelType(int32(v))
			continue
		case 4:
			ip = &t.VocabSize
		case 40:
			ip = &t.UnkID
		case 41:
			ip = &t.BosID
		case 42:
			ip = &t.EosID
		case 43:
			ip = &t.PadID
		case 45:
			sp = &t.UnkPiece
		case 46:
			sp = &t.BosPiece
		case 47:
			sp = &t.EosPiece
		case 48:
			sp = &t.PadPiece
		case 44:
			sp = &t.UnkSurface
		case 35:
			bp = &t.ByteFallback
		case 25:
			bp = &t.SplitDigits
		case 24:
			bp = &t.TreatWhitespaceAsSuffix
		case 26:
			bp = &t.AllowWhitespaceOnlyPieces
		}
		switch {
		case ip != nil:
			v, err := d.expectVarint(field, wt)
			if err != nil {
				return err
			}
			// int32 fields carry negative values sign-extended to 64 bits.
			*ip = int32(int64(v))
		case bp != nil:
			v, err := d.expectVarint(field, wt)
			if err != nil {
				return err
			}
			*bp = v != 0
		case sp != nil:
			if wt != wireBytes {
				return fmt.Errorf("%w: trainer_spec field %d has wire type %d, want 2", ErrMalformed, field, wt)
			}
			s, err := d.bytes()
			if err != nil {
				return err
			}
			*sp = string(s)
		default:
			if err := d.skip(field, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseNormalizerSpec(b []byte, n *NormalizerSpec, ctx string) error {
	d := wireDecoder{buf: b, ctx: ctx}
	for !d.done() {
		field, wt, err := d.key()
		if err != nil {
			return err
		}
		switch field {
		case 1, 2, 6:
			if wt != wireBytes {
				return fmt.Errorf("%w: %s field %d has wire type %d, want 2", ErrMalformed, ctx, field, wt)
			}
			s, err := d.bytes()
			if err != nil {
				return err
			}
			switch field {
			case 1:
				n.Name = string(s)
			case 2:
				n.PrecompiledCharsmap = append([]byte(nil), s...)
			case 6:
				n.NormalizationRuleTSV = string(s)
			}
		case 3, 4, 5:
			v, err := d.expectVarint(field, wt)
			if err != nil {
				return err
			}
			switch field {
			case 3:
				n.AddDummyPrefix = v != 0
			case 4:
				n.RemoveExtraWhitespaces = v != 0
			case 5:
				n.EscapeWhitespaces = v != 0
			}
		default:
			if err := d.skip(field, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5
)

// wireDecoder reads protobuf wire format from an in-memory message. Every read checks the
// remaining length first, so a truncated or hostile file produces an error, never a panic.
type wireDecoder struct {
	buf []byte
	pos int
	ctx string
}

func (d *wireDecoder) done() bool { return d.pos >= len(d.buf) }

func (d *wireDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, d.ctx, d.pos, fmt.Sprintf(format, args...))
}

func (d *wireDecoder) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if d.pos >= len(d.buf) {
			return 0, d.errorf("truncated varint")
		}
		c := d.buf[d.pos]
		d.pos++
		if i == 9 && c > 1 {
			return 0, d.errorf("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, d.errorf("varint longer than 10 bytes")
}

func (d *wireDecoder) key() (field int, wt int, err error) {
	v, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	field64 := v >> 3
	if field64 == 0 || field64 > 1<<29-1 {
		return 0, 0, d.errorf("invalid field number %d", field64)
	}
	return int(field64), int(v & 7), nil
}

func (d *wireDecoder) expectVarint(field, wt int) (uint64, error) {
	if wt != wireVarint {
		return 0, d.errorf("field %d has wire type %d, want varint", field, wt)
	}
	return d.varint()
}

func (d *wireDecoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.buf)-d.pos) {
		return nil, d.errorf("length %d exceeds the %d bytes left", n, len(d.buf)-d.pos)
	}
	b := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *wireDecoder) fixed32() (uint32, error) {
	if len(d.buf)-d.pos < 4 {
		return 0, d.errorf("truncated fixed32")
	}
	b := d.buf[d.pos:]
	d.pos += 4
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

// skip passes over a field this decoder does not use. Groups (deprecated wire types 3/4) are
// skipped with a depth limit so that nesting cannot exhaust the stack.
func (d *wireDecoder) skip(field, wt int) error {
	return d.skipDepth(field, wt, 0)
}

func (d *wireDecoder) skipDepth(field, wt, depth int) error {
	switch wt {
	case wireVarint:
		_, err := d.varint()
		return err
	case wireFixed64:
		if len(d.buf)-d.pos < 8 {
			return d.errorf("truncated fixed64")
		}
		d.pos += 8
		return nil
	case wireBytes:
		_, err := d.bytes()
		return err
	case wireFixed32:
		_, err := d.fixed32()
		return err
	case wireStart:
		if depth > 64 {
			return d.errorf("groups nested too deeply")
		}
		for {
			f, t, err := d.key()
			if err != nil {
				return err
			}
			if t == wireEnd {
				if f != field {
					return d.errorf("group %d closed by end tag %d", field, f)
				}
				return nil
			}
			if err := d.skipDepth(f, t, depth+1); err != nil {
				return err
			}
		}
	default:
		return d.errorf("field %d has invalid wire type %d", field, wt)
	}
}

// Vocab returns the pieces as a Unigram vocabulary in id order, scores widened exactly to
// float64, which is what Hugging Face's converters write into tokenizer.json.
func (m *ModelProto) Vocab() []VocabEntry {
	v := make([]VocabEntry, len(m.Pieces))
	for i, p := range m.Pieces {
		v[i] = VocabEntry{Piece: p.Piece, Score: float64(p.Score)}
	}
	return v
}
