package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrUnknownArchitecture is returned for a config.json whose model_type or architecture
// clinfer does not implement.
var ErrUnknownArchitecture = errors.New("unknown architecture")

// ErrInvalidConfig is returned for a config.json with missing or inconsistent settings.
var ErrInvalidConfig = errors.New("invalid config")

// SupportedModelTypes lists the config.json model_type values clinfer loads.
var SupportedModelTypes = []string{"bert", "roberta", "xlm-roberta", "xlnet", "qwen2", "layoutlmv3"}

// SupportedArchitectures lists the config.json architectures entries clinfer implements.
var SupportedArchitectures = []string{
	"BertModel", "BertForTokenClassification", "BertForSequenceClassification",
	"RobertaModel", "RobertaForTokenClassification", "RobertaForSequenceClassification",
	"XLMRobertaModel", "XLMRobertaForTokenClassification", "XLMRobertaForSequenceClassification",
	"XLNetModel", "XLNetForTokenClassification", "XLNetForSequenceClassification",
	"Qwen2Model", "Qwen2ForCausalLM",
	"LayoutLMv3Model", "LayoutLMv3ForTokenClassification", "LayoutLMv3ForSequenceClassification",
}

// Config is a parsed and validated config.json. Exactly one of the typed sections is set,
// chosen by ModelType.
type Config struct {
	ModelType     string
	Architectures []string
	ID2Label      map[int]string
	Label2ID      map[string]int
	TorchDType    string
	PadTokenID    *int
	BOSTokenID    *int
	EOSTokenID    *int

	Bert       *BertConfig
	XLNet      *XLNetConfig
	Qwen2      *Qwen2Config
	LayoutLMv3 *LayoutLMv3Config

	// Raw keeps every key of the file, for settings the typed sections do not model.
	Raw map[string]any
}

// NumLabels is the number of classifier outputs (len(id2label)); 2 when the file has none,
// as transformers' PretrainedConfig defaults.
func (c *Config) NumLabels() int {
	if len(c.ID2Label) == 0 {
		return 2
	}
	return len(c.ID2Label)
}

// Labels returns id2label in id order.
func (c *Config) Labels() []string {
	n := c.NumLabels()
	out := make([]string, n)
	for i := range out {
		if l, ok := c.ID2Label[i]; ok {
			out[i] = l
		} else {
			out[i] = "LABEL_" + strconv.Itoa(i)
		}
	}
	return out
}

// Architecture returns the first entry of architectures, or "" when there is none.
func (c *Config) Architecture() string {
	if len(c.Architectures) == 0 {
		return ""
	}
	return c.Architectures[0]
}

// BertConfig covers BERT, RoBERTa and XLM-RoBERTa (same encoder, different embeddings).
type BertConfig struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TypeVocabSize         int     `json:"type_vocab_size"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	PadTokenID            int     `json:"pad_token_id"`
	PositionEmbeddingType string  `json:"position_embedding_type"`
}

// XLNetConfig is XLNet's configuration.
type XLNetConfig struct {
	VocabSize         int     `json:"vocab_size"`
	DModel            int     `json:"d_model"`
	NLayer            int     `json:"n_layer"`
	NHead             int     `json:"n_head"`
	DHead             int     `json:"d_head"`
	DInner            int     `json:"d_inner"`
	FFActivation      string  `json:"ff_activation"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	AttnType          string  `json:"attn_type"`
	BiData            bool    `json:"bi_data"`
	ClampLen          int     `json:"clamp_len"`
	SameLength        bool    `json:"same_length"`
	UntieR            bool    `json:"untie_r"`
	PadTokenID        int     `json:"pad_token_id"`
	SummaryType       string  `json:"summary_type"`
	SummaryUseProj    bool    `json:"summary_use_proj"`
	SummaryActivation string  `json:"summary_activation"`
}

// Qwen2Config is Qwen2's (and Qwen1.5's) configuration.
type Qwen2Config struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	NumKeyValueHeads      int     `json:"num_key_value_heads"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	RMSNormEps            float64 `json:"rms_norm_eps"`
	RopeTheta             float64 `json:"rope_theta"`
	TieWordEmbeddings     bool    `json:"tie_word_embeddings"`
	UseSlidingWindow      bool    `json:"use_sliding_window"`
	SlidingWindow         int     `json:"sliding_window"`
	MaxWindowLayers       int     `json:"max_window_layers"`
}

// LayoutLMv3Config is LayoutLMv3's configuration.
type LayoutLMv3Config struct {
	VocabSize                int     `json:"vocab_size"`
	HiddenSize               int     `json:"hidden_size"`
	NumHiddenLayers          int     `json:"num_hidden_layers"`
	NumAttentionHeads        int     `json:"num_attention_heads"`
	IntermediateSize         int     `json:"intermediate_size"`
	HiddenAct                string  `json:"hidden_act"`
	MaxPositionEmbeddings    int     `json:"max_position_embeddings"`
	TypeVocabSize            int     `json:"type_vocab_size"`
	LayerNormEps             float64 `json:"layer_norm_eps"`
	PadTokenID               int     `json:"pad_token_id"`
	Max2DPositionEmbeddings  int     `json:"max_2d_position_embeddings"`
	CoordinateSize           int     `json:"coordinate_size"`
	ShapeSize                int     `json:"shape_size"`
	HasRelativeAttentionBias bool    `json:"has_relative_attention_bias"`
	RelPosBins               int     `json:"rel_pos_bins"`
	MaxRelPos                int     `json:"max_rel_pos"`
	HasSpatialAttentionBias  bool    `json:"has_spatial_attention_bias"`
	Rel2DPosBins             int     `json:"rel_2d_pos_bins"`
	MaxRel2DPos              int     `json:"max_rel_2d_pos"`
	TextEmbed                bool    `json:"text_embed"`
	VisualEmbed              bool    `json:"visual_embed"`
	InputSize                int     `json:"input_size"`
	NumChannels              int     `json:"num_channels"`
	PatchSize                int     `json:"patch_size"`
}

// LoadConfig reads dir/config.json (or the file itself when path names a file).
func LoadConfig(path string) (*Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	var head struct {
		ModelType     string            `json:"model_type"`
		Architectures []string          `json:"architectures"`
		ID2Label      map[string]string `json:"id2label"`
		Label2ID      map[string]int    `json:"label2id"`
		TorchDType    string            `json:"torch_dtype"`
		PadTokenID    *int              `json:"pad_token_id"`
		BOSTokenID    *int              `json:"bos_token_id"`
		EOSTokenID    *int              `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	c := &Config{
		ModelType:     head.ModelType,
		Architectures: head.Architectures,
		Label2ID:      head.Label2ID,
		TorchDType:    head.TorchDType,
		PadTokenID:    head.PadTokenID,
		BOSTokenID:    head.BOSTokenID,
		EOSTokenID:    head.EOSTokenID,
		Raw:           raw,
	}
	if len(head.ID2Label) > 0 {
		c.ID2Label = make(map[int]string, len(head.ID2Label))
		for k, v := range head.ID2Label {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(head.ID2Label) {
				return nil, fmt.Errorf("%w: id2label key %q is not an id in [0, %d)", ErrInvalidConfig, k, len(head.ID2Label))
			}
			c.ID2Label[i] = v
		}
	}
	for _, a := range c.Architectures {
		if !contains(SupportedArchitectures, a) {
			return nil, fmt.Errorf("%w: architecture %q (supported: %s)", ErrUnknownArchitecture, a, strings.Join(SupportedArchitectures, ", "))
		}
	}
	var err error
	switch c.ModelType {
	case "bert", "roberta", "xlm-roberta":
		c.Bert = &BertConfig{HiddenAct: "gelu", TypeVocabSize: 2, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute", MaxPositionEmbeddings: 512}
		if c.ModelType != "bert" {
			c.Bert.PadTokenID = 1
		}
		if err = json.Unmarshal(data, c.Bert); err == nil {
			err = c.Bert.validate()
		}
	case "xlnet":
		c.XLNet = &XLNetConfig{FFActivation: "gelu", LayerNormEps: 1e-12, AttnType: "bi", ClampLen: -1, UntieR: true, PadTokenID: 5, SummaryType: "last", SummaryUseProj: true, SummaryActivation: "tanh"}
		if err = json.Unmarshal(data, c.XLNet); err == nil {
			err = c.XLNet.validate()
		}
	case "qwen2":
		c.Qwen2 = &Qwen2Config{HiddenAct: "silu", RMSNormEps: 1e-6, RopeTheta: 10000, MaxWindowLayers: 28}
		if err = json.Unmarshal(data, c.Qwen2); err == nil {
			if c.Qwen2.NumKeyValueHeads == 0 {
				c.Qwen2.NumKeyValueHeads = c.Qwen2.NumAttentionHeads
			}
			err = c.Qwen2.validate()
		}
	case "layoutlmv3":
		c.LayoutLMv3 = &LayoutLMv3Config{HiddenAct: "gelu", LayerNormEps: 1e-5, PadTokenID: 1, TypeVocabSize: 2,
			Max2DPositionEmbeddings: 1024, CoordinateSize: 128, ShapeSize: 128, HasRelativeAttentionBias: true,
			RelPosBins: 32, MaxRelPos: 128, HasSpatialAttentionBias: true, Rel2DPosBins: 64, MaxRel2DPos: 256,
			TextEmbed: true, VisualEmbed: true, InputSize: 224, NumChannels: 3, PatchSize: 16}
		if err = json.Unmarshal(data, c.LayoutLMv3); err == nil {
			err = c.LayoutLMv3.validate()
		}
	case "":
		return nil, fmt.Errorf("%w: no model_type (supported: %s)", ErrUnknownArchitecture, strings.Join(SupportedModelTypes, ", "))
	default:
		return nil, fmt.Errorf("%w: model_type %q (supported: %s)", ErrUnknownArchitecture, c.ModelType, strings.Join(SupportedModelTypes, ", "))
	}
	if err != nil {
		if errors.Is(err, ErrInvalidConfig) {
			return nil, fmt.Errorf("%s: %w", c.ModelType, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, c.ModelType, err)
	}
	return c, nil
}

type check struct {
	name string
	ok   bool
}

func validate(checks ...check) error {
	var bad []string
	for _, c := range checks {
		if !c.ok {
			bad = append(bad, c.name)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(bad, "; "))
	}
	return nil
}

func knownAct(a string) bool {
	switch a {
	case "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish", "tanh":
		return true
	}
	return false
}

func (b *BertConfig) validate() error {
	return validate(
		check{"vocab_size must be > 0", b.VocabSize > 0},
		check{"hidden_size must be > 0", b.HiddenSize > 0},
		check{"num_hidden_layers must be > 0", b.NumHiddenLayers > 0},
		check{"num_attention_heads must divide hidden_size", b.NumAttentionHeads > 0 && b.HiddenSize%b.NumAttentionHeads == 0},
		check{"intermediate_size must be > 0", b.IntermediateSize > 0},
		check{"max_position_embeddings must be > 0", b.MaxPositionEmbeddings > 0},
		check{"type_vocab_size must be > 0", b.TypeVocabSize > 0},
		check{"layer_norm_eps must be > 0", b.LayerNormEps > 0},
		check{"hidden_act " + strconv.Quote(b.HiddenAct) + " unsupported", knownAct(b.HiddenAct)},
		check{"position_embedding_type " + strconv.Quote(b.PositionEmbeddingType) + " unsupported (only absolute)", b.PositionEmbeddingType == "absolute"},
	)
}

func (x *XLNetConfig) validate() error {
	return validate(
		check{"vocab_size must be > 0", x.VocabSize > 0},
		check{"d_model must be > 0", x.DModel > 0},
		check{"n_layer must be > 0", x.NLayer > 0},
		check{"n_head * d_head must equal d_model", x.NHead > 0 && x.DHead > 0 && x.NHead*x.DHead == x.DModel},
		check{"d_inner must be > 0", x.DInner > 0},
		check{"layer_norm_eps must be > 0", x.LayerNormEps > 0},
		check{"attn_type " + strconv.Quote(x.AttnType) + " unsupported (only bi)", x.AttnType == "bi"},
		check{"bi_data unsupported", !x.BiData},
		check{"ff_activation " + strconv.Quote(x.FFActivation) + " unsupported", knownAct(x.FFActivation)},
	)
}

func (q *Qwen2Config) validate() error {
	return validate(
		check{"vocab_size must be > 0", q.VocabSize > 0},
		check{"hidden_size must be > 0", q.HiddenSize > 0},
		check{"num_hidden_layers must be > 0", q.NumHiddenLayers > 0},
		check{"num_attention_heads must divide hidden_size", q.NumAttentionHeads > 0 && q.HiddenSize%q.NumAttentionHeads == 0},
		check{"num_key_value_heads must divide num_attention_heads", q.NumKeyValueHeads > 0 && q.NumAttentionHeads%q.NumKeyValueHeads == 0},
		check{"intermediate_size must be > 0", q.IntermediateSize > 0},
		check{"max_position_embeddings must be > 0", q.MaxPositionEmbeddings > 0},
		check{"rms_norm_eps must be > 0", q.RMSNormEps > 0},
		check{"rope_theta must be > 0", q.RopeTheta > 0},
		check{"hidden_act " + strconv.Quote(q.HiddenAct) + " unsupported", q.HiddenAct == "silu" || q.HiddenAct == "swish"},
		check{"sliding_window must be > 0 when use_sliding_window", !q.UseSlidingWindow || q.SlidingWindow > 0},
	)
}

func (l *LayoutLMv3Config) validate() error {
	return validate(
		check{"vocab_size must be > 0", l.VocabSize > 0},
		check{"hidden_size must be > 0", l.HiddenSize > 0},
		check{"num_hidden_layers must be > 0", l.NumHiddenLayers > 0},
		check{"num_attention_heads must divide hidden_size", l.NumAttentionHeads > 0 && l.HiddenSize%l.NumAttentionHeads == 0},
		check{"intermediate_size must be > 0", l.IntermediateSize > 0},
		check{"layer_norm_eps must be > 0", l.LayerNormEps > 0},
		check{"patch_size must divide input_size", l.PatchSize > 0 && l.InputSize > 0 && l.InputSize%l.PatchSize == 0},
		check{"4*coordinate_size + 2*shape_size must equal hidden_size", 4*l.CoordinateSize+2*l.ShapeSize == l.HiddenSize},
		check{"hidden_act " + strconv.Quote(l.HiddenAct) + " unsupported", knownAct(l.HiddenAct)},
	)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
