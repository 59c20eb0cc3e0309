// Package tokenize implements Hugging Face tokenizers in Go, token for token and offset for
// offset: tokenizer.json pipelines (normalizer, pre-tokenizer, WordPiece / byte-level BPE /
// Unigram model, post-processor, decoder, added tokens) and the older file sets (vocab.txt;
// vocab.json + merges.txt; SentencePiece .model), with Hugging Face's truncation, overflowing
// windows with stride, padding, pairs, pre-split words, batch encoding and decoding, plus
// chat templates from tokenizer_config.json.
//
// Every Encoding reports offsets twice: Offsets in bytes of the input string (Go indices,
// text[o.Start:o.End]) and CharOffsets in code points (what Python's offset_mapping gives).
//
// Invalid UTF-8 is rejected with an *InvalidUTF8Error naming the first bad byte
// (errors.Is(err, ErrInvalidUTF8)). Hugging Face only ever sees valid Unicode strings, so there
// is no reference behavior to copy, and replacing bytes would make the reported byte offsets
// disagree with what callers slice out of their own text.
//
// A loaded Tokenizer is immutable and safe for concurrent use; per-call buffers come from a
// sync.Pool and the BPE word cache is lock-free. The library never logs input text.
package tokenize
