package chattemplate

import (
	"fmt"
	"strings"
)

// Template source is cut into text and tags with the whitespace rules of the Jinja environment
// transformers builds for chat templates: trim_blocks (the newline right after a block or comment
// tag is dropped) and lstrip_blocks (spaces and tabs before a block or comment tag on its own
// line are dropped), plus the explicit `-` markers on any tag and `+` to keep lstrip off.

type segKind int

const (
	segText segKind = iota
	segExpr         // {{ ... }}
	segStmt         // {% ... %}
)

type segment struct {
	kind segKind
	text string // raw text, or the inside of the tag
	pos  int    // byte offset of the segment in the source, for errors
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func split(src string) ([]segment, error) {
	var segs []segment
	trimLeading := false // the previous tag ended with "-": strip all leading whitespace
	trimNewline := false // trim_blocks: drop one newline after a block or comment tag
	lineStarting := true // the previous match ended at a line start (Jinja's line_starting)
	isWS := func(r rune) bool { return r < 128 && isSpace(byte(r)) }
	i := 0
	for {
		// Find the next tag opener.
		j := i
		for {
			k := strings.IndexByte(src[j:], '{')
			if k < 0 || j+k+1 >= len(src) {
				j = len(src)
				break
			}
			j += k
			if c := src[j+1]; c == '{' || c == '%' || c == '#' {
				break
			}
			j++
		}
		text := src[i:j]
		if trimLeading {
			text = strings.TrimLeftFunc(text, isWS)
		} else if trimNewline {
			if strings.HasPrefix(text, "\r\n") {
				text = text[2:]
			} else if strings.HasPrefix(text, "\n") {
				text = text[1:]
			}
		}
		if j == len(src) {
			if text != "" {
				segs = append(segs, segment{kind: segText, text: text, pos: i})
			}
			return segs, nil
		}
		open := src[j+1]
		inner := j + 2
		stripBefore, keepBefore := false, false
		if inner < len(src) && src[inner] == '-' {
			stripBefore = true
			inner++
		} else if inner < len(src) && src[inner] == '+' {
			keepBefore = true
			inner++
		}
		switch {
		case stripBefore:
			text = strings.TrimRightFunc(text, isWS)
		case open != '{' && !keepBefore:
			lpos := strings.LastIndexByte(text, '\n') + 1
			if (lpos > 0 || lineStarting) && strings.Trim(text[lpos:], " \t") == "" {
				text = text[:lpos]
			}
		}
		if text != "" {
			segs = append(segs, segment{kind: segText, text: text, pos: i})
		}
		var closeTok string
		switch open {
		case '{':
			closeTok = "}}"
		case '%':
			closeTok = "%}"
		default:
			closeTok = "#}"
		}
		end, body, err := findClose(src, inner, closeTok, open == '#')
		if err != nil {
			return nil, fmt.Errorf("chattemplate: byte %d: %w", j, err)
		}
		stripAfter := strings.HasSuffix(body, "-")
		if stripAfter {
			body = body[:len(body)-1]
		}
		switch open {
		case '{':
			segs = append(segs, segment{kind: segExpr, text: body, pos: j})
		case '%':
			segs = append(segs, segment{kind: segStmt, text: body, pos: j})
		}
		i = end
		trimLeading = stripAfter
		trimNewline = open != '{' && !stripAfter
		// Whether what the tag end consumes leaves us at a line start.
		rest := src[i:]
		lineStarting = false
		if stripAfter {
			ws := len(rest) - len(strings.TrimLeftFunc(rest, isWS))
			lineStarting = ws > 0 && rest[ws-1] == '\n'
		} else if trimNewline {
			lineStarting = strings.HasPrefix(rest, "\n") || strings.HasPrefix(rest, "\r\n")
		}
	}
}

// findClose finds the end of a tag, skipping string literals in expressions and statements.
func findClose(src string, from int, closeTok string, comment bool) (end int, body string, err error) {
	i := from
	for i < len(src) {
		c := src[i]
		if !comment && (c == '\'' || c == '"') {
			k := i + 1
			for k < len(src) && src[k] != c {
				if src[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(src) {
				return 0, "", fmt.Errorf("unterminated string literal")
			}
			i = k + 1
			continue
		}
		if strings.HasPrefix(src[i:], closeTok) {
			return i + 2, src[from:i], nil
		}
		i++
	}
	return 0, "", fmt.Errorf("unclosed tag, want %q", closeTok)
}
