package tokenize

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// model turns one pre-tokenized word into tokens (offsets relative to the word's bytes).
type model interface {
	tokenize(word string, out []rawToken, sc *scratch) ([]rawToken, error)
	tokenToID(tok string) (int, bool)
	idToToken(id int) (string, bool)
	vocabSize() int
}

// wordPiece is BERT's greedy longest-match-first subword model.
type wordPiece struct {
	vocab     map[string]int
	cont      map[string]int // tokens that start with the continuation prefix, prefix removed
	idToTok   []string
	unk       string
	unkID     int
	prefix    string
	maxChars  int
	maxTokLen int // longest vocabulary entry in bytes (prefix excluded): bounds the search
}

func newWordPiece(vocab map[string]int, unk, prefix string, maxChars int) (*wordPiece, error) {
	wp := &wordPiece{vocab: vocab, cont: make(map[string]int), unk: unk, prefix: prefix, maxChars: maxChars}
	maxID := -1
	for t, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("wordpiece: negative id %d for %q", id, t)
		}
		if id > maxID {
			maxID = id
		}
		if prefix != "" && strings.HasPrefix(t, prefix) {
			rest := t[len(prefix):]
			wp.cont[rest] = id
			if len(rest) > wp.maxTokLen {
				wp.maxTokLen = len(rest)
			}
		} else if len(t) > wp.maxTokLen {
			wp.maxTokLen = len(t)
		}
	}
	if prefix == "" {
		wp.cont = vocab
	}
	wp.idToTok = make([]string, maxID+1)
	for t, id := range vocab {
		wp.idToTok[id] = t
	}
	id, ok := vocab[unk]
	if !ok {
		return nil, fmt.Errorf("wordpiece: unk token %q is not in the vocabulary", unk)
	}
	wp.unkID = id
	return wp, nil
}

func (wp *wordPiece) tokenize(word string, out []rawToken, _ *scratch) ([]rawToken, error) {
	if utf8.RuneCountInString(word) > wp.maxChars {
		return append(out, rawToken{wp.unkID, wp.unk, 0, len(word)}), nil
	}
	base := len(out)
	for start := 0; start < len(word); {
		end := len(word)
		if end-start > wp.maxTokLen {
			// No vocabulary entry is longer: start the search at the longest possible
			// candidate that ends on a character boundary.
			end = start + wp.maxTokLen
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		found := false
		for end > start {
			sub := word[start:end]
			var id int
			var ok bool
			if start == 0 {
				id, ok = wp.vocab[sub]
			} else {
				id, ok = wp.cont[sub]
			}
			if ok {
				out = append(out, rawToken{id, wp.idToTok[id], start, end})
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(sub)
			end -= size
		}
		if !found {
			return append(out[:base], rawToken{wp.unkID, wp.unk, 0, len(word)}), nil
		}
		start = end
	}
	return out, nil
}

func (wp *wordPiece) tokenToID(t string) (int, bool) { id, ok := wp.vocab[t]; return id, ok }
func (wp *wordPiece) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(wp.idToTok) {
		return "", false
	}
	return wp.idToTok[id], true
}
func (wp *wordPiece) vocabSize() int { return len(wp.vocab) }
