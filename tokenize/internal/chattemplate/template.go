package chattemplate

import "fmt"

// Template is a parsed chat template. Immutable; Render may be called concurrently.
type Template struct {
	nodes []node
}

// Message is one chat turn.
type Message struct {
	Role    string
	Content string
}

// Parse compiles Jinja source (a tokenizer_config.json `chat_template`). Unsupported syntax
// (macros, call blocks, includes, recursive loops) is reported here, not at render time.
func Parse(src string) (*Template, error) {
	segs, err := split(src)
	if err != nil {
		return nil, err
	}
	sp := &stmtParser{segs: segs}
	nodes, _, _, err := sp.parseBody()
	if err != nil {
		return nil, err
	}
	return &Template{nodes: nodes}, nil
}

// Render executes the template with the given variables (converted with FromGo).
func (t *Template) Render(vars map[string]any) (string, error) {
	scope := map[string]Value{}
	for k, v := range vars {
		c, err := FromGo(v)
		if err != nil {
			return "", fmt.Errorf("chattemplate: variable %q: %w", k, err)
		}
		scope[k] = c
	}
	r := &renderer{scopes: []map[string]Value{scope}}
	if err := r.exec(t.nodes); err != nil {
		if _, ok := err.(errLoopCtl); ok {
			return "", fmt.Errorf("chattemplate: break or continue outside a loop")
		}
		return "", err
	}
	return r.out.String(), nil
}

// Apply renders messages the way transformers' apply_chat_template(tokenize=False) does:
// variables `messages` and `add_generation_prompt`, plus extra (for instance bos_token,
// eos_token and other special tokens from tokenizer_config.json, or tools).
func (t *Template) Apply(messages []Message, addGenerationPrompt bool, extra map[string]any) (string, error) {
	vars := make(map[string]any, len(extra)+2)
	for k, v := range extra {
		vars[k] = v
	}
	vars["messages"] = messages
	vars["add_generation_prompt"] = addGenerationPrompt
	return t.Render(vars)
}

// String returns a short description, never the template text.
func (t *Template) String() string {
	return fmt.Sprintf("chattemplate.Template(%d nodes)", len(t.nodes))
}
