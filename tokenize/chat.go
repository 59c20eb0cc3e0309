package tokenize

import (
	"errors"
	"fmt"
	"sync"

	"github.com/clinfer/clinfer/tokenize/internal/chattemplate"
)

// Message is one chat turn for ApplyChatTemplate.
type Message struct {
	Role    string // "system", "user", "assistant"
	Content string
}

// ErrNoChatTemplate is returned when the tokenizer was loaded without a chat_template.
var ErrNoChatTemplate = errors.New("tokenize: no chat_template in tokenizer_config.json")

// chatState parses the template on first use, so that a template using Jinja features the
// renderer lacks does not stop the tokenizer itself from loading.
type chatState struct {
	once sync.Once
	tpl  *chattemplate.Template
	err  error
}

func (t *Tokenizer) chatTemplate() (*chattemplate.Template, error) {
	if t.config == nil || t.config.ChatTemplate == "" || t.chat == nil {
		return nil, ErrNoChatTemplate
	}
	t.chat.once.Do(func() {
		t.chat.tpl, t.chat.err = chattemplate.Parse(t.config.ChatTemplate)
		if t.chat.err != nil {
			t.chat.err = fmt.Errorf("tokenize: chat_template: %w", t.chat.err)
		}
	})
	return t.chat.tpl, t.chat.err
}

// HasChatTemplate reports whether tokenizer_config.json carried a chat template.
func (t *Tokenizer) HasChatTemplate() bool {
	return t.config != nil && t.config.ChatTemplate != ""
}

// ApplyChatTemplate renders messages with the model's chat template, as transformers'
// apply_chat_template(messages, tokenize=False, add_generation_prompt=...) does. The template
// also sees bos_token, eos_token, pad_token and unk_token from tokenizer_config.json.
func (t *Tokenizer) ApplyChatTemplate(msgs []Message, addGenerationPrompt bool) (string, error) {
	tpl, err := t.chatTemplate()
	if err != nil {
		return "", err
	}
	cm := make([]chattemplate.Message, len(msgs))
	for i, m := range msgs {
		if err := checkUTF8(m.Content, fmt.Sprintf("message %d", i)); err != nil {
			return "", err
		}
		cm[i] = chattemplate.Message{Role: m.Role, Content: m.Content}
	}
	c := t.config
	extra := map[string]any{
		"bos_token": c.BOSToken, "eos_token": c.EOSToken, "pad_token": c.PadToken, "unk_token": c.UnkToken,
	}
	out, err := tpl.Apply(cm, addGenerationPrompt, extra)
	if err != nil {
		return "", fmt.Errorf("tokenize: chat_template: %w", err)
	}
	return out, nil
}

// EncodeChat renders messages and encodes the result without adding special tokens (the
// template writes them), as apply_chat_template(tokenize=True) does.
func (t *Tokenizer) EncodeChat(msgs []Message, addGenerationPrompt bool) (*Encoding, error) {
	s, err := t.ApplyChatTemplate(msgs, addGenerationPrompt)
	if err != nil {
		return nil, err
	}
	return t.EncodeInput(Input{Text: s}, Options{NoSpecialTokens: true, NoTruncation: true, NoPadding: true})
}
