package chattemplate

import "testing"

// qwen25 is the shape of the Qwen2.5-Instruct template (tools, tool calls, tool responses),
// written out here to exercise whitespace control, namespaces of conditions and tojson the way
// newer HF templates use them.
const qwen25 = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`

func TestQwen25Shape(t *testing.T) {
	tpl, err := Parse(qwen25)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Apply([]Message{{"system", "Sys."}, {"user", "Hi"}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>system\nSys.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	args := NewDict()
	args.Set("mrn", "00123456")
	args.Set("limit", int64(2))
	fn := NewDict()
	fn.Set("name", "lookup")
	fn.Set("arguments", args)
	call := NewDict()
	call.Set("function", fn)
	asst := NewDict()
	asst.Set("role", "assistant")
	asst.Set("content", "")
	asst.Set("tool_calls", []Value{call})
	tool := NewDict()
	tool.Set("name", "lookup")
	tool.Set("description", "Find <a> \"record\"")
	user := NewDict()
	user.Set("role", "user")
	user.Set("content", "Look it up")
	resp := NewDict()
	resp.Set("role", "tool")
	resp.Set("content", "found")
	got, err = tpl.Render(map[string]any{
		"messages":              []any{user, asst, resp},
		"tools":                 []any{tool},
		"add_generation_prompt": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n<tools>\n" +
		`{"name": "lookup", "description": "Find <a> \"record\""}` + "\n</tools><|im_end|>\n" +
		"<|im_start|>user\nLook it up<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n" + `{"name": "lookup", "arguments": {"mrn": "00123456", "limit": 2}}` + "\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\nfound\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
