// Package sentencepiece holds the SentencePiece pieces of the tokenize package, written from
// the formats and the published behaviour of SentencePiece and Hugging Face tokenizers (no code
// copied, no dependency):
//
//   - ParseModelProto / LoadModelProto: a hand-written protobuf wire decoder for `.model` files
//     (ModelProto: pieces with score and type, trainer_spec, normalizer_spec,
//     denormalizer_spec). Every read is bounds-checked; structural errors wrap ErrMalformed and
//     name the message and byte position. Unknown fields are skipped, absent ones take the
//     proto defaults.
//   - CharsMap: the `precompiled_charsmap` (Darts double-array trie + replacement table) with
//     both lookup semantics in use: Hugging Face's Precompiled normalizer (Edits, Normalize)
//     and SentencePiece's own longest-match rule (Prefix, used by Normalizer).
//   - Unigram: Viterbi segmentation with Hugging Face tokenizers' exact rules (NewUnigram), or
//     SentencePiece's own (NewSentencePieceUnigram).
//   - Normalizer: SentencePiece's native normalizer (whitespace collapsing, dummy prefix, ▁).
//   - DigitCommaPenalty: the XLNet score adjustment Hugging Face's converter applies.
//
// # Using it from the tokenize package
//
// Hugging Face pipeline (tokenizer.json, or a `.model` converted the way transformers does):
//
//	cm, err := sentencepiece.ParseCharsMap(blob)   // base64-decoded precompiled_charsmap
//	edits, changed := cm.Edits(normalized, nil)     // []Edit{R rune, Change int}
//	if changed {
//		// Feed to NormalizedString.transform(edits, 0): Change has tokenizers' meaning
//		// (0 replace, 1 insert, -N replace and remove N). Or, on a fresh string:
//		out, align := cm.Normalize(s) // align[i] = original [start,end) of output byte i
//	}
//
//	u, err := sentencepiece.NewUnigram(vocab, unkID, byteFallback) // vocab in id order
//	toks, err := u.Encode(word, toks[:0]) // word = one pre-token, already normalized
//	// toks[i].ID, .Piece, .Start/.End (byte offsets into word). An unknown run is one token
//	// whose Piece is the raw text and ID the unk id (tokenizers' fuse_unk); with byte
//	// fallback it becomes <0xNN> tokens that all carry the run's range.
//
// Loading a `.model` for the Hugging Face pipeline:
//
//	mp, err := sentencepiece.LoadModelProto(path)
//	vocab := mp.Vocab()                             // float32 scores widened exactly
//	vocab = sentencepiece.DigitCommaPenalty(vocab)  // XLNet only (XLNetConverter)
//	cm, err := sentencepiece.ParseCharsMap(mp.Normalizer.PrecompiledCharsmap)
//	// unk id: mp.Trainer.UnkID; byte fallback: mp.Trainer.ByteFallback
//
// Reproducing raw SentencePiece (spm.EncodeAsPieces), e.g. to compare with other tools:
//
//	n, _ := sentencepiece.NewNormalizer(mp)
//	u, _ := sentencepiece.NewSentencePieceUnigram(mp)
//	s, normToOrig := n.Normalize(text)
//	toks, _ := u.Encode(s, nil)
//
// # Exactness notes
//
// Hugging Face's Precompiled cuts the text into extended grapheme clusters; a cluster shorter
// than 6 bytes is looked up whole, and the lookup takes the *shortest* rule that is a prefix of
// the cluster, dropping the rest of the cluster (so "\r\n", one cluster, becomes the rule for
// "\r" alone). Longer clusters and unmatched ones go rune by rune. Only clusters under 6 bytes
// can behave differently from rune-by-rune lookup, and the segmenter here is exact for those;
// for longer clusters it approximates (no Indic conjunct rule, Extended_Pictographic from a
// built-in range list), which cannot change the output.
//
// Removal bookkeeping follows tokenizers' `replace` helper, including its quirk that a rune
// removed before any output rune is not recorded, so the next output rune inherits its
// alignment.
//
// Unigram (Hugging Face): every vocabulary entry, control tokens included, is matchable; an
// unknown rune scores min(score) - 10 over the whole vocabulary (after any penalty); scores are
// float64 and a best path is replaced only by a strictly better one, visiting starts left to
// right (so "555" gives "5","55" where raw SentencePiece gives "55","5"); token ids are looked
// up by token text. NewSentencePieceUnigram instead follows SentencePiece's EncodeOptimized:
// only NORMAL and USER_DEFINED pieces match, user-defined pieces score len*max-0.1, unknowns
// min(NORMAL)-10, and best scores are stored as float32 but candidates compared in double.
//
// Inputs are expected to be valid UTF-8 (the tokenize package decides the policy for invalid
// bytes); invalid bytes never cause a panic: they are single-byte units everywhere.
//
// All types are immutable after construction and safe for concurrent use.
package sentencepiece
