package tagging

// Token is one model token of a text, without the special tokens a post-processor adds.
type Token struct {
	ID    int
	Piece string // the vocabulary string, e.g. "##ing" or "Ġthe"
	// Start and End are the token's span in the text, in bytes. A token made from a
	// normalized character still points at the original bytes.
	Start, End int
}

// Tokenizer is what the pipeline needs from a tokenizer. FromTokenize adapts the
// tokenize package's tokenizer; tests use small hand-made ones.
// Implementations must be safe for concurrent use.
type Tokenizer interface {
	// Tokenize splits text into tokens without special tokens. It must not fail on valid
	// UTF-8; the pipeline rejects invalid UTF-8 before calling it.
	Tokenize(text string) ([]Token, error)
	// Frame adds the special tokens of a single sequence around a window's content ids,
	// as the tokenizer's post-processor does ([CLS] A [SEP] for BERT, <s> A </s> for
	// RoBERTa, A <sep> <cls> for XLNet): ids, type ids, and which positions are special.
	Frame(content []int) (ids, typeIDs []int, special []bool)
	// PadID is the id that fills windows shorter than the batch's longest.
	PadID() int
	// UnkID is the unknown token's id, or -1 when the vocabulary has none.
	UnkID() int
	// SubwordPrefix is the model's continuing-subword prefix ("##" for WordPiece), or ""
	// when the model marks word starts otherwise (byte-level BPE, Unigram); it decides how
	// words are found, as in Hugging Face's pipeline.
	SubwordPrefix() string
	// JoinPieces turns pieces back into a string as the tokenizer's decoder does
	// (Hugging Face's convert_tokens_to_string); it fills Entity.Word.
	JoinPieces(pieces []string) string
}
