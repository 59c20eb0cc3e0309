package tokenize

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Config is the part of tokenizer_config.json that changes how text is encoded or rendered.
type Config struct {
	TokenizerClass     string                `json:"tokenizer_class"`
	DoLowerCase        *bool                 `json:"do_lower_case"`
	StripAccents       *bool                 `json:"strip_accents"`
	TokenizeChinese    *bool                 `json:"tokenize_chinese_chars"`
	AddPrefixSpace     *bool                 `json:"add_prefix_space"`
	ModelMaxLength     float64               `json:"model_max_length"`
	ChatTemplate       string                `json:"-"`
	BOSToken           string                `json:"-"`
	EOSToken           string                `json:"-"`
	PadToken           string                `json:"-"`
	UnkToken           string                `json:"-"`
	AddedTokensDecoder map[string]AddedToken `json:"added_tokens_decoder"`
}

// LoadConfig reads dir/tokenizer_config.json; it returns nil, nil when the file is absent.
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %s: %w", p, err)
	}
	return c, nil
}

// ParseConfig parses tokenizer_config.json contents.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	// Special tokens are either a string or an AddedToken object ({"content": ...}).
	tokStr := func(key string) (string, error) {
		r, ok := raw[key]
		if !ok || string(r) == "null" {
			return "", nil
		}
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s, nil
		}
		var o struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(r, &o); err != nil {
			return "", fmt.Errorf("%s: neither a string nor a token object", key)
		}
		return o.Content, nil
	}
	var err error
	if c.BOSToken, err = tokStr("bos_token"); err != nil {
		return nil, err
	}
	if c.EOSToken, err = tokStr("eos_token"); err != nil {
		return nil, err
	}
	if c.PadToken, err = tokStr("pad_token"); err != nil {
		return nil, err
	}
	if c.UnkToken, err = tokStr("unk_token"); err != nil {
		return nil, err
	}
	if r, ok := raw["chat_template"]; ok && string(r) != "null" {
		if json.Unmarshal(r, &c.ChatTemplate) != nil {
			// A list of named templates: take "default".
			var named []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err := json.Unmarshal(r, &named); err != nil {
				return nil, errors.New("chat_template: neither a string nor a list of named templates")
			}
			for _, n := range named {
				if n.Name == "default" {
					c.ChatTemplate = n.Template
				}
			}
		}
	}
	return &c, nil
}

// specialAddedTokens lists added_tokens_decoder entries in id order.
func (c *Config) specialAddedTokens() []AddedToken {
	var out []AddedToken
	for k, v := range c.AddedTokensDecoder {
		id, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		v.ID = id
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Config returns the tokenizer_config.json the tokenizer was loaded with (nil when none).
func (t *Tokenizer) Config() *Config { return t.config }
