// Package chattemplate renders Hugging Face chat templates (the Jinja `chat_template` string of
// tokenizer_config.json) with a small, safe interpreter of the Jinja subset those templates use,
// so that prompts match transformers' apply_chat_template(tokenize=False) byte for byte.
//
// # Using it from the tokenize package
//
//	tpl, err := chattemplate.Parse(cfg.ChatTemplate) // once, at load; safe for concurrent use
//	text, err := tpl.Apply(
//		[]chattemplate.Message{{Role: "system", Content: "..."}, {Role: "user", Content: "..."}},
//		true, // add_generation_prompt
//		map[string]any{"bos_token": bos, "eos_token": eos}, // whatever else the template reads
//	)
//	// then encode text with the tokenizer: special tokens such as <|im_start|> in the rendered
//	// text are matched as added tokens (Qwen's post-processor adds nothing).
//
// Render(vars) is the general form; values are converted by FromGo (maps get sorted keys;
// build a *Dict with NewDict/Set for a specific key order, which tojson and items() keep).
// A template calling raise_exception fails with an error wrapping ErrRaised.
//
// # Supported Jinja
//
// Whitespace rules of transformers' environment: trim_blocks and lstrip_blocks, plus `{%-`,
// `-%}`, `{{-`, `-}}`, `{%+`. Statements: if/elif/else, for (one or several targets, an `if`
// filter, else, loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
// break/continue), set (including `set ns.attr = ...` on namespace() and block set),
// generation/endgeneration (rendered through), comments. Expressions: literals (strings,
// ints, floats, true/false/none, lists, dicts), attribute and item access (negative indices,
// slices), + - * / // % ** ~, comparisons, in / not in, and/or/not, `x if c else y`, tests
// (defined, undefined, none, string, number, integer, float, boolean, mapping, sequence,
// iterable, odd, even, eq, ne, in, true, false), filters (trim, length/count, string, upper,
// lower, title, capitalize, default/d, first, last, join, list, reverse, int, tojson (as
// transformers defines it: json.dumps, ensure_ascii off), items, safe, escape), functions
// raise_exception, namespace, range, dict, and string/dict methods strip/lstrip/rstrip,
// startswith/endswith, upper/lower/title, replace, split, items/keys/values/get.
// Not supported (Parse fails): macros, call blocks, include/import/extends, recursive loops.
//
// # Safety
//
// No template can run unbounded: loops only iterate over finite values, there is no recursion,
// and a render fails once it exceeds 2,000,000 evaluation steps, 64 MiB of output, or a
// range() of 1,000,000 items. Undefined values print as "" and fail when indexed further, as
// Jinja's default Undefined does. The template text and rendered prompts are never logged.
package chattemplate
