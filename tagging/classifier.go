// Package tagging is the token-classification pipeline shared by every tagger architecture
// (BERT, RoBERTa, XLM-RoBERTa today; XLNet and LayoutLMv3 later): it splits a text into
// windows of the model's length with a stride, turns logits into softmax scores, aggregates
// tokens into entities with Hugging Face's strategies (none, simple, first, average, max),
// and de-identifies a text from its entities (redact, mask, consistent surrogates).
//
// The pipeline knows nothing about how a model computes: a model is a TokenClassifier, a
// tokenizer is a Tokenizer (see FromTokenize for the tokenize package's).
//
// The package never logs, and its errors never quote input text.
package tagging

import "context"

// EncodedBatch is a batch of tokenized windows, all padded to one length T.
// Architectures that need more inputs (LayoutLMv3's boxes and image) will get optional
// fields here; a classifier ignores the fields it does not use.
type EncodedBatch struct {
	IDs     [][]int // [B][T] token ids, padding included
	TypeIDs [][]int // [B][T] token type (segment) ids
	Mask    [][]int // [B][T] attention mask: 1 for real tokens, 0 for padding
}

// Len returns the batch size B and the padded length T.
func (b EncodedBatch) Len() (batch, length int) {
	if len(b.IDs) == 0 {
		return 0, 0
	}
	return len(b.IDs), len(b.IDs[0])
}

// TokenClassifier is a model that labels every token of a window.
// Implementations must be safe for concurrent use.
type TokenClassifier interface {
	// Labels returns id2label in id order.
	Labels() []string
	// MaxLength is the longest window the model accepts, special tokens included.
	MaxLength() int
	// Logits classifies a batch of windows: out[b][t] holds len(Labels()) logits for
	// token t of window b (padding positions included; the pipeline ignores them).
	Logits(ctx context.Context, in EncodedBatch) ([][][]float32, error)
}
