package chattemplate

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func refsDir() string {
	if d := os.Getenv("CLINFER_TOKENIZER_REFS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "testdata", "tokenizers")
}

func qwenTemplate(t *testing.T) *Template {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(refsDir(), "qwen2", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	tpl, err := Parse(cfg.ChatTemplate)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestReferenceQwenPrompt renders record t035's conversation (a user turn, generation prompt,
// the template's default system message) and must give the record's text byte for byte.
func TestReferenceQwenPrompt(t *testing.T) {
	tpl := qwenTemplate(t)
	f, err := os.Open(filepath.Join(refsDir(), "qwen2", "reference.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct{ ID, Text string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.ID == "t035" {
			want = r.Text
		}
	}
	if want == "" {
		t.Fatal("record t035 not found")
	}
	got, err := tpl.Apply([]Message{{"user", "Summarize the note: Pt is a 67 y/o M with h/o CHF, admitted 03/14/2019 for SOB."}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestQwenChatML(t *testing.T) {
	tpl := qwenTemplate(t)
	sys := Message{"system", "You are a de-identification assistant."}
	user := Message{"user", "Find the names."}
	asst := Message{"assistant", "John Smith"}
	cases := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"system-user-assistant", []Message{sys, user, asst}, false,
			"<|im_start|>system\nYou are a de-identification assistant.<|im_end|>\n" +
				"<|im_start|>user\nFind the names.<|im_end|>\n" +
				"<|im_start|>assistant\nJohn Smith"},
		{"system-user-assistant+gen", []Message{sys, user, asst}, true,
			// The last turn is closed, and no new assistant turn follows an assistant turn.
			"<|im_start|>system\nYou are a de-identification assistant.<|im_end|>\n" +
				"<|im_start|>user\nFind the names.<|im_end|>\n" +
				"<|im_start|>assistant\nJohn Smith<|im_end|>\n"},
		{"system-user+gen", []Message{sys, user}, true,
			"<|im_start|>system\nYou are a de-identification assistant.<|im_end|>\n" +
				"<|im_start|>user\nFind the names.<|im_end|>\n<|im_start|>assistant\n"},
		{"user-only-default-system", []Message{user}, false,
			"<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nFind the names."},
		{"user-assistant-user+gen", []Message{user, asst, user}, true,
			"<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" +
				"<|im_start|>user\nFind the names.<|im_end|>\n" +
				"<|im_start|>assistant\nJohn Smith<|im_end|>\n" +
				"<|im_start|>user\nFind the names.<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tpl.Apply(c.msgs, c.gen, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func render(t *testing.T, src string, vars map[string]any) string {
	t.Helper()
	tpl, err := Parse(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	out, err := tpl.Render(vars)
	if err != nil {
		t.Fatalf("render %q: %v", src, err)
	}
	return out
}

func TestJinjaSubset(t *testing.T) {
	msgs := []Message{{"system", "S"}, {"user", " hi "}, {"assistant", "A"}}
	vars := map[string]any{"messages": msgs, "bos_token": "<s>", "eos_token": "</s>", "n": 3}
	cases := []struct{ src, want string }{
		{"{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m['content'] | trim }}{% if not loop.last %},{% endif %}{% endfor %}{{ eos_token }}", "<s>system:S,user:hi,assistant:A</s>"},
		{"{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.length }}{% endfor %}", "013123233"},
		{"{% if n > 5 %}big{% elif n == 3 %}three{% else %}small{% endif %}", "three"},
		{"{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue"},
		{"{{ messages | length }} {{ messages[-1].content }} {{ messages[1:] | length }}", "3 A 2"},
		{"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 }} {{ 'ab' * 2 }}", "3 -4 1 3.5 8 abab"},
		{"{% set x = 1 %}{% for m in messages %}{% set x = x + 1 %}{% endfor %}{{ x }}", "1"},
		{"{% set ns = namespace(c=0) %}{% for m in messages %}{% set ns.c = ns.c + 1 %}{% endfor %}{{ ns.c }}", "3"},
		{"{{ missing is defined }} {{ missing }}|{{ n is number }} {{ 'x' in 'xyz' }} {{ 'q' not in ['a'] }}", "False |True True True"},
		{"{{ {'a': 1, 'b': [1, 'x', none]} | tojson }}", `{"a": 1, "b": [1, "x", null]}`},
		{"{{ 'yes' if n else 'no' }} {{ messages[0]['role'] == 'system' and messages[1].role != 'x' }}", "yes True"},
		{"{% for m in messages if m.role != 'system' %}{{ m.content.strip() }}{% endfor %}", "hiA"},
		{"{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ m.role[0] }}{% endfor %}", "su"},
		{"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;"},
		{"{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
		{"{{ ' a ' | trim | upper }}{{ 'Hello'.startswith('He') }}{{ 'x' | default('d') }}{{ nope | default('d') }}", "ATruexd"},
		{"{# comment #}a{{ 'b' }}c", "abc"},
		{"{% for i in range(3) %}{{ i }}{% endfor %}", "012"},
	}
	for _, c := range cases {
		if got := render(t, c.src, vars); got != c.want {
			t.Errorf("%s\n got %q\nwant %q", c.src, got, c.want)
		}
	}
}

// TestWhitespaceControl checks trim_blocks, lstrip_blocks and "-" markers, which transformers
// enables for every chat template.
func TestWhitespaceControl(t *testing.T) {
	vars := map[string]any{"items": []any{"a", "b"}}
	cases := []struct{ src, want string }{
		{"{% for x in items %}\n{{ x }}\n{% endfor %}\n", "a\nb\n"},
		{"  {% if true %}\n    yes\n  {% endif %}\nend", "    yes\nend"},
		{"a   {%- if true -%}   b   {%- endif %}  c", "ab  c"},
		{"x  {{- 'y' -}}  z", "xyz"},
		{"line\n  {%+ if true %}k{% endif %}", "line\n  k"},
		{"{{ 'a' }}\n{{ 'b' }}", "a\nb"},
		{"  {# c #}\nz", "z"},
	}
	for _, c := range cases {
		if got := render(t, c.src, vars); got != c.want {
			t.Errorf("%q\n got %q\nwant %q", c.src, got, c.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tpl, err := Parse("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Apply([]Message{{"system", "x"}}, false, nil)
	if !errors.Is(err, ErrRaised) || !strings.Contains(err.Error(), "System role not supported") {
		t.Errorf("raise_exception: got %v", err)
	}
	if out, err := tpl.Apply([]Message{{"user", "x"}}, false, nil); err != nil || out != "ok" {
		t.Errorf("got %q, %v", out, err)
	}
	// Jinja fails the same way: messages[-1] of an empty list is undefined, and so is its role.
	if _, err := qwenTemplate(t).Apply(nil, true, nil); err == nil {
		t.Error("Qwen template with no messages and a generation prompt rendered")
	}
	for _, src := range []string{
		"{% for x in y %}", "{% if %}", "{{ }}", "{% macro m() %}{% endmacro %}", "{{ 'abc }}",
		"{% endfor %}", "{{ a.(b) }}", "{% set %}", "{{ x | }}",
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
	for _, src := range []string{
		"{{ undefined_thing.attr }}", "{{ 1 + 'a' }}", "{{ 'x' * 100000000000 }}",
		"{% for i in range(10000000) %}{% endfor %}", "{{ 1 // 0 }}", "{% break %}",
		"{% for i in range(900000) %}{% for j in range(900000) %}{% endfor %}{% endfor %}",
	} {
		tpl, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if _, err := tpl.Render(nil); err == nil {
			t.Errorf("Render(%q) succeeded", src)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	f.Add("{% for m in messages %}{{ m.role + ':' + m.content }}{% endfor %}")
	f.Add("{%- if x -%}{{ 'a' ~ b | trim }}{% else %}{{ c[1:2] }}{% endif %}")
	f.Add("{% set ns = namespace(a=1) %}{% set ns.a = ns.a * 2 %}{{ ns.a | tojson }}")
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := Parse(src)
		if err != nil {
			return
		}
		_, _ = tpl.Apply([]Message{{"user", "hi"}, {"assistant", "yo"}}, true, map[string]any{"bos_token": "<s>"})
	})
}
