// Package taggers loads a token-classification checkpoint directory of any architecture
// clinfer implements into a tagging.Pipeline. It lives apart from tagging because the model
// packages import tagging (for the TokenClassifier contract).
package taggers

import (
	"fmt"

	"github.com/clinfer/clinfer/bert"
	"github.com/clinfer/clinfer/tagging"
	"github.com/clinfer/clinfer/weights"
	"github.com/clinfer/clinfer/xlnet"
)

// LoadModel loads the token classifier in dir (config.json + checkpoint), choosing the
// architecture from config.json's model_type.
func LoadModel(dir string) (tagging.TokenClassifier, error) {
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	switch cfg.ModelType {
	case "bert", "roberta", "xlm-roberta":
		m, err := bert.Load(dir, bert.WithHead(bert.HeadToken))
		if err != nil {
			return nil, err
		}
		return m, nil
	case "xlnet":
		return xlnet.LoadTagger(dir)
	}
	return nil, fmt.Errorf("taggers: %s: model_type %q has no token classifier in clinfer yet: %w", dir, cfg.ModelType, weights.ErrUnknownArchitecture)
}

// Load loads the model and tokenizer in dir and returns a pipeline with opts. Windows are
// no longer than the tokenizer's model_max_length when tokenizer_config.json sets one
// below the model's positions, as Hugging Face's pipeline cuts them.
func Load(dir string, opts tagging.Options) (*tagging.Pipeline, error) {
	m, err := LoadModel(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tagging.LoadTokenizer(dir)
	if err != nil {
		return nil, err
	}
	if n := tagging.TokenizerMaxLength(tok); n > 0 && n < m.MaxLength() {
		m = capped{m, n}
	}
	return tagging.New(m, tok, opts)
}

// capped shortens a classifier's windows.
type capped struct {
	tagging.TokenClassifier
	max int
}

func (c capped) MaxLength() int { return c.max }
