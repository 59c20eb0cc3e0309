package chattemplate

import (
	"fmt"
	"strconv"
	"strings"
)

// ---- expression tokens ----

type tokKind int

const (
	tkEOF tokKind = iota
	tkName
	tkString
	tkInt
	tkFloat
	tkOp
)

type token struct {
	kind tokKind
	s    string
}

var ops3 = []string{"//", "==", "!=", "<=", ">=", "**"}

func tokenize(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case isSpace(c):
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{tkName, src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '_') {
				j++
			}
			kind := tkInt
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				kind = tkFloat
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{kind, strings.ReplaceAll(src[i:j], "_", "")})
			i = j
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("unterminated string")
				}
				if src[j] == c {
					break
				}
				if src[j] == '\\' && j+1 < len(src) {
					j++
					switch src[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					case '\\', '\'', '"':
						b.WriteByte(src[j])
					default:
						b.WriteByte('\\')
						b.WriteByte(src[j])
					}
					j++
					continue
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{tkString, b.String()})
			i = j + 1
		default:
			op := ""
			for _, o := range ops3 {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("+-*/%~()[]{}.,:|=<>", rune(c)) {
					return nil, fmt.Errorf("unexpected character %q", c)
				}
				op = string(c)
			}
			toks = append(toks, token{tkOp, op})
			i += len(op)
		}
	}
	return append(toks, token{kind: tkEOF}), nil
}

// ---- expression AST ----

type expr interface{}

type (
	litExpr  struct{ v Value }
	nameExpr struct{ name string }
	listExpr struct{ items []expr }
	dictExpr struct{ keys, vals []expr }
	attrExpr struct {
		x    expr
		name string
	}
	indexExpr struct{ x, i expr }
	sliceExpr struct{ x, lo, hi, step expr } // nil parts are omitted
	callExpr  struct {
		fn     expr
		args   []expr
		kwargs map[string]expr
		kwKeys []string
	}
	filterExpr struct {
		x      expr
		name   string
		args   []expr
		kwargs map[string]expr
	}
	testExpr struct {
		x    expr
		name string
		args []expr
		neg  bool
	}
	unaryExpr struct {
		op string
		x  expr
	}
	binExpr struct {
		op   string
		l, r expr
	}
	condExpr struct{ cond, yes, no expr } // no may be nil
)

type parser struct {
	toks []token
	p    int
}

func (ps *parser) peek() token { return ps.toks[ps.p] }
func (ps *parser) next() token {
	t := ps.toks[ps.p]
	if t.kind != tkEOF {
		ps.p++
	}
	return t
}
func (ps *parser) isOp(s string) bool   { t := ps.peek(); return t.kind == tkOp && t.s == s }
func (ps *parser) isName(s string) bool { t := ps.peek(); return t.kind == tkName && t.s == s }
func (ps *parser) expectOp(s string) error {
	if !ps.isOp(s) {
		return fmt.Errorf("expected %q, found %q", s, ps.peek().s)
	}
	ps.next()
	return nil
}

func (ps *parser) parseExpr() (expr, error) {
	x, err := ps.parseOr()
	if err != nil {
		return nil, err
	}
	if ps.isName("if") {
		ps.next()
		cond, err := ps.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr
		if ps.isName("else") {
			ps.next()
			if no, err = ps.parseExpr(); err != nil {
				return nil, err
			}
		}
		return &condExpr{cond: cond, yes: x, no: no}, nil
	}
	return x, nil
}

func (ps *parser) parseOr() (expr, error) {
	l, err := ps.parseAnd()
	for err == nil && ps.isName("or") {
		ps.next()
		var r expr
		if r, err = ps.parseAnd(); err == nil {
			l = &binExpr{op: "or", l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parseAnd() (expr, error) {
	l, err := ps.parseNot()
	for err == nil && ps.isName("and") {
		ps.next()
		var r expr
		if r, err = ps.parseNot(); err == nil {
			l = &binExpr{op: "and", l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parseNot() (expr, error) {
	if ps.isName("not") {
		ps.next()
		x, err := ps.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: "not", x: x}, nil
	}
	return ps.parseCompare()
}

func (ps *parser) parseCompare() (expr, error) {
	l, err := ps.parseMath1()
	if err != nil {
		return nil, err
	}
	for {
		t := ps.peek()
		var op string
		switch {
		case t.kind == tkOp && (t.s == "==" || t.s == "!=" || t.s == "<" || t.s == "<=" || t.s == ">" || t.s == ">="):
			op = t.s
			ps.next()
		case t.kind == tkName && t.s == "in":
			op = "in"
			ps.next()
		case t.kind == tkName && t.s == "not" && ps.toks[ps.p+1].kind == tkName && ps.toks[ps.p+1].s == "in":
			op = "not in"
			ps.next()
			ps.next()
		default:
			return l, nil
		}
		r, err := ps.parseMath1()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: op, l: l, r: r}
	}
}

func (ps *parser) parseMath1() (expr, error) {
	l, err := ps.parseConcat()
	for err == nil && (ps.isOp("+") || ps.isOp("-")) {
		op := ps.next().s
		var r expr
		if r, err = ps.parseConcat(); err == nil {
			l = &binExpr{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parseConcat() (expr, error) {
	l, err := ps.parseMath2()
	for err == nil && ps.isOp("~") {
		ps.next()
		var r expr
		if r, err = ps.parseMath2(); err == nil {
			l = &binExpr{op: "~", l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parseMath2() (expr, error) {
	l, err := ps.parsePow()
	for err == nil && (ps.isOp("*") || ps.isOp("/") || ps.isOp("//") || ps.isOp("%")) {
		op := ps.next().s
		var r expr
		if r, err = ps.parsePow(); err == nil {
			l = &binExpr{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parsePow() (expr, error) {
	l, err := ps.parseUnary()
	for err == nil && ps.isOp("**") {
		ps.next()
		var r expr
		if r, err = ps.parseUnary(); err == nil {
			l = &binExpr{op: "**", l: l, r: r}
		}
	}
	return l, err
}

func (ps *parser) parseUnary() (expr, error) {
	if ps.isOp("-") || ps.isOp("+") {
		op := ps.next().s
		x, err := ps.parseUnary()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: op, x: x}, nil
	}
	x, err := ps.parsePrimary()
	if err != nil {
		return nil, err
	}
	if x, err = ps.parsePostfix(x); err != nil {
		return nil, err
	}
	return ps.parseFilters(x)
}

func (ps *parser) parsePrimary() (expr, error) {
	t := ps.next()
	switch t.kind {
	case tkString:
		s := t.s
		// Adjacent string literals concatenate, as in Python and Jinja.
		for ps.peek().kind == tkString {
			s += ps.next().s
		}
		return &litExpr{v: s}, nil
	case tkInt:
		n, err := strconv.ParseInt(t.s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", t.s)
		}
		return &litExpr{v: n}, nil
	case tkFloat:
		f, err := strconv.ParseFloat(t.s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", t.s)
		}
		return &litExpr{v: f}, nil
	case tkName:
		switch t.s {
		case "true", "True":
			return &litExpr{v: true}, nil
		case "false", "False":
			return &litExpr{v: false}, nil
		case "none", "None":
			return &litExpr{v: nil}, nil
		}
		return &nameExpr{name: t.s}, nil
	case tkOp:
		switch t.s {
		case "(":
			x, err := ps.parseExpr()
			if err != nil {
				return nil, err
			}
			if ps.isOp(",") { // tuple: evaluate as a list
				items := []expr{x}
				for ps.isOp(",") {
					ps.next()
					if ps.isOp(")") {
						break
					}
					it, err := ps.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, it)
				}
				x = &listExpr{items: items}
			}
			return x, ps.expectOp(")")
		case "[":
			var items []expr
			for !ps.isOp("]") {
				it, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				items = append(items, it)
				if !ps.isOp(",") {
					break
				}
				ps.next()
			}
			return &listExpr{items: items}, ps.expectOp("]")
		case "{":
			d := &dictExpr{}
			for !ps.isOp("}") {
				k, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				if err := ps.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
				if !ps.isOp(",") {
					break
				}
				ps.next()
			}
			return d, ps.expectOp("}")
		}
	}
	if t.kind == tkEOF {
		return nil, fmt.Errorf("unexpected end of expression")
	}
	return nil, fmt.Errorf("unexpected %q", t.s)
}

func (ps *parser) parsePostfix(x expr) (expr, error) {
	for {
		switch {
		case ps.isOp("."):
			ps.next()
			t := ps.next()
			if t.kind != tkName && t.kind != tkInt {
				return nil, fmt.Errorf("expected attribute name after '.'")
			}
			x = &attrExpr{x: x, name: t.s}
		case ps.isOp("["):
			ps.next()
			var parts [3]expr
			n := 0
			sliced := false
			for {
				if ps.isOp(":") {
					sliced = true
					ps.next()
					n++
					if n > 2 {
						return nil, fmt.Errorf("too many ':' in subscript")
					}
					continue
				}
				if ps.isOp("]") {
					break
				}
				e, err := ps.parseExpr()
				if err != nil {
					return nil, err
				}
				parts[n] = e
				if !ps.isOp(":") {
					break
				}
			}
			if err := ps.expectOp("]"); err != nil {
				return nil, err
			}
			if sliced {
				x = &sliceExpr{x: x, lo: parts[0], hi: parts[1], step: parts[2]}
			} else {
				if parts[0] == nil {
					return nil, fmt.Errorf("empty subscript")
				}
				x = &indexExpr{x: x, i: parts[0]}
			}
		case ps.isOp("("):
			ps.next()
			args, kw, keys, err := ps.parseArgs()
			if err != nil {
				return nil, err
			}
			x = &callExpr{fn: x, args: args, kwargs: kw, kwKeys: keys}
		default:
			return x, nil
		}
	}
}

// parseArgs reads call arguments after "(" through ")".
func (ps *parser) parseArgs() ([]expr, map[string]expr, []string, error) {
	var args []expr
	var kw map[string]expr
	var keys []string
	for !ps.isOp(")") {
		if ps.peek().kind == tkName && ps.toks[ps.p+1].kind == tkOp && ps.toks[ps.p+1].s == "=" {
			name := ps.next().s
			ps.next()
			v, err := ps.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			if kw == nil {
				kw = map[string]expr{}
			}
			kw[name] = v
			keys = append(keys, name)
		} else {
			v, err := ps.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			args = append(args, v)
		}
		if !ps.isOp(",") {
			break
		}
		ps.next()
	}
	return args, kw, keys, ps.expectOp(")")
}

func (ps *parser) parseFilters(x expr) (expr, error) {
	for {
		switch {
		case ps.isOp("|"):
			ps.next()
			t := ps.next()
			if t.kind != tkName {
				return nil, fmt.Errorf("expected filter name after '|'")
			}
			f := &filterExpr{x: x, name: t.s}
			if ps.isOp("(") {
				ps.next()
				args, kw, _, err := ps.parseArgs()
				if err != nil {
					return nil, err
				}
				f.args, f.kwargs = args, kw
			}
			x = f
		case ps.isName("is"):
			ps.next()
			te := &testExpr{x: x}
			if ps.isName("not") {
				ps.next()
				te.neg = true
			}
			t := ps.next()
			if t.kind != tkName {
				return nil, fmt.Errorf("expected test name after 'is'")
			}
			te.name = t.s
			switch {
			case ps.isOp("("):
				ps.next()
				args, _, _, err := ps.parseArgs()
				if err != nil {
					return nil, err
				}
				te.args = args
			case ps.peek().kind == tkString || ps.peek().kind == tkInt || ps.peek().kind == tkFloat:
				arg, err := ps.parsePrimary()
				if err != nil {
					return nil, err
				}
				te.args = []expr{arg}
			}
			x = te
		default:
			return x, nil
		}
	}
}

// ---- statements ----

type node interface{}

type (
	textNode   struct{ s string }
	outputNode struct{ x expr }
	ifNode     struct {
		conds  []expr
		bodies [][]node
		els    []node
	}
	forNode struct {
		vars   []string
		iter   expr
		filter expr
		body   []node
		els    []node
	}
	setNode struct {
		target string
		attr   string // set ns.attr = ...
		x      expr
		body   []node // block set: {% set x %}...{% endset %}
	}
	loopCtl struct{ brk bool }
)

func parseExprString(s string) (expr, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	ps := &parser{toks: toks}
	x, err := ps.parseExpr()
	if err != nil {
		return nil, err
	}
	if ps.peek().kind != tkEOF {
		return nil, fmt.Errorf("unexpected %q after expression", ps.peek().s)
	}
	return x, nil
}

type stmtParser struct {
	segs []segment
	p    int
}

// parseBody parses nodes until a statement whose keyword is in stops; it returns that keyword
// and its tokens ("" at the end of the template).
func (sp *stmtParser) parseBody(stops ...string) ([]node, string, *parser, error) {
	var nodes []node
	for sp.p < len(sp.segs) {
		seg := sp.segs[sp.p]
		sp.p++
		switch seg.kind {
		case segText:
			nodes = append(nodes, &textNode{s: seg.text})
		case segExpr:
			x, err := parseExprString(seg.text)
			if err != nil {
				return nil, "", nil, fmt.Errorf("chattemplate: byte %d: {{%s}}: %w", seg.pos, seg.text, err)
			}
			nodes = append(nodes, &outputNode{x: x})
		case segStmt:
			toks, err := tokenize(seg.text)
			if err != nil {
				return nil, "", nil, fmt.Errorf("chattemplate: byte %d: %w", seg.pos, err)
			}
			ps := &parser{toks: toks}
			kw := ps.next()
			if kw.kind != tkName {
				return nil, "", nil, fmt.Errorf("chattemplate: byte %d: statement without a keyword", seg.pos)
			}
			for _, s := range stops {
				if kw.s == s {
					return nodes, kw.s, ps, nil
				}
			}
			n, err := sp.parseStmt(kw.s, ps)
			if err != nil {
				return nil, "", nil, fmt.Errorf("chattemplate: byte %d: {%%%s%%}: %w", seg.pos, seg.text, err)
			}
			if n != nil {
				nodes = append(nodes, n)
			}
		}
	}
	if len(stops) > 0 {
		return nil, "", nil, fmt.Errorf("chattemplate: missing {%% %s %%}", stops[len(stops)-1])
	}
	return nodes, "", nil, nil
}

func endOf(ps *parser) error {
	if ps.peek().kind != tkEOF {
		return fmt.Errorf("unexpected %q", ps.peek().s)
	}
	return nil
}

func (sp *stmtParser) parseStmt(kw string, ps *parser) (node, error) {
	switch kw {
	case "if":
		n := &ifNode{}
		cond, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := endOf(ps); err != nil {
			return nil, err
		}
		for {
			body, stop, ps2, err := sp.parseBody("elif", "else", "endif")
			if err != nil {
				return nil, err
			}
			n.conds = append(n.conds, cond)
			n.bodies = append(n.bodies, body)
			switch stop {
			case "elif":
				if cond, err = ps2.parseExpr(); err != nil {
					return nil, err
				}
				if err := endOf(ps2); err != nil {
					return nil, err
				}
				continue
			case "else":
				if n.els, _, _, err = sp.parseBody("endif"); err != nil {
					return nil, err
				}
			}
			return n, nil
		}
	case "for":
		n := &forNode{}
		for {
			t := ps.next()
			if t.kind != tkName {
				return nil, fmt.Errorf("expected loop variable")
			}
			n.vars = append(n.vars, t.s)
			if !ps.isOp(",") {
				break
			}
			ps.next()
		}
		if !ps.isName("in") {
			return nil, fmt.Errorf("expected 'in'")
		}
		ps.next()
		// The iterable stops before a trailing "if" filter, so parse below the conditional.
		iter, err := ps.parseOr()
		if err != nil {
			return nil, err
		}
		n.iter = iter
		if ps.isName("if") {
			ps.next()
			if n.filter, err = ps.parseOr(); err != nil {
				return nil, err
			}
		}
		if ps.isName("recursive") {
			return nil, fmt.Errorf("recursive loops are not supported")
		}
		if err := endOf(ps); err != nil {
			return nil, err
		}
		body, stop, _, err := sp.parseBody("else", "endfor")
		if err != nil {
			return nil, err
		}
		n.body = body
		if stop == "else" {
			if n.els, _, _, err = sp.parseBody("endfor"); err != nil {
				return nil, err
			}
		}
		return n, nil
	case "set":
		t := ps.next()
		if t.kind != tkName {
			return nil, fmt.Errorf("expected a name to set")
		}
		n := &setNode{target: t.s}
		if ps.isOp(".") {
			ps.next()
			a := ps.next()
			if a.kind != tkName {
				return nil, fmt.Errorf("expected attribute name")
			}
			n.attr = a.s
		}
		if ps.peek().kind == tkEOF && n.attr == "" {
			body, _, _, err := sp.parseBody("endset")
			if err != nil {
				return nil, err
			}
			n.body = body
			return n, nil
		}
		if err := ps.expectOp("="); err != nil {
			return nil, err
		}
		x, err := ps.parseExpr()
		if err != nil {
			return nil, err
		}
		n.x = x
		return n, endOf(ps)
	case "break", "continue":
		return &loopCtl{brk: kw == "break"}, endOf(ps)
	case "generation":
		// transformers' AssistantTracker marks assistant text; rendering passes it through.
		body, _, _, err := sp.parseBody("endgeneration")
		if err != nil {
			return nil, err
		}
		return &ifNode{conds: []expr{&litExpr{v: true}}, bodies: [][]node{body}}, endOf(ps)
	}
	return nil, fmt.Errorf("unsupported statement %q", kw)
}
