package qwen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinfer/clinfer/tokenize"
)

// ChatTokenizer is a Tokenizer that can also render a conversation with the model's chat
// template and encode it (ready for generation, i.e. add_generation_prompt=True).
type ChatTokenizer interface {
	Tokenizer
	EncodeChat(msgs []tokenize.Message) ([]int, error)
}

// hfTokenizer adapts a tokenize.Tokenizer to the model's Tokenizer interface.
type hfTokenizer struct{ t *tokenize.Tokenizer }

// NewTokenizer adapts a tokenize.Tokenizer (e.g. tokenize.Load(dir) on a Qwen2 checkpoint):
// text is encoded with the tokenizer's own post-processing (Qwen2's adds no special tokens)
// and no truncation or padding, and decoded without special tokens (skip_special_tokens=True).
// Chat messages go through the tokenizer's chat_template.
func NewTokenizer(t *tokenize.Tokenizer) ChatTokenizer { return hfTokenizer{t} }

func (h hfTokenizer) Encode(text string) ([]int, error) {
	enc, err := h.t.EncodeInput(tokenize.Input{Text: text}, tokenize.Options{NoTruncation: true, NoPadding: true})
	if err != nil {
		return nil, err
	}
	return enc.IDs, nil
}

func (h hfTokenizer) Decode(ids []int) (string, error) { return h.t.Decode(ids, true), nil }

func (h hfTokenizer) EncodeChat(msgs []tokenize.Message) ([]int, error) {
	enc, err := h.t.EncodeChat(msgs, true)
	if err != nil {
		return nil, err
	}
	return enc.IDs, nil
}

// loadTokenizer loads dir's tokenizer when the directory has one (nil, nil otherwise).
func loadTokenizer(dir string) (Tokenizer, error) {
	for _, f := range []string{"tokenizer.json", "vocab.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t, err := tokenize.Load(dir)
			if err != nil {
				return nil, fmt.Errorf("qwen: tokenizer: %w", err)
			}
			return NewTokenizer(t), nil
		}
	}
	return nil, nil
}

// GenerateChat renders each conversation with the tokenizer's chat template (with the
// assistant generation prompt), then generates the assistant's reply.
func (m *Model) GenerateChat(ctx context.Context, conversations [][]tokenize.Message, opt GenerateOptions) ([]Result, error) {
	ct, ok := m.tok.(ChatTokenizer)
	if !ok {
		return nil, errors.New("qwen: GenerateChat needs a ChatTokenizer (Options.Tokenizer)")
	}
	ids := make([][]int, len(conversations))
	for i, conv := range conversations {
		var err error
		if ids[i], err = ct.EncodeChat(conv); err != nil {
			return nil, fmt.Errorf("qwen: conversation %d: %w", i, err)
		}
	}
	return m.Generate(ctx, ids, opt)
}
