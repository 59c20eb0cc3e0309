package chattemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value is a template value: nil (none), bool, int64, float64, string, []Value, *Dict,
// Undefined, or a builtin function.
type Value = any

// Dict is a string-keyed mapping that remembers insertion order, as Python dicts do (tojson and
// items() depend on it).
type Dict struct {
	keys []string
	m    map[string]Value
	ns   bool // a namespace(): attribute assignment allowed
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{m: map[string]Value{}} }

// Set adds or replaces a key, keeping first-insertion order.
func (d *Dict) Set(k string, v Value) {
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

// Get looks a key up.
func (d *Dict) Get(k string) (Value, bool) { v, ok := d.m[k]; return v, ok }

// Undefined is the value of a missing variable, key or attribute. It prints as "", is false,
// and fails when indexed further (Jinja's default Undefined).
type Undefined struct{ Name string }

type builtin func(r *renderer, args []Value, kw map[string]Value) (Value, error)

// ErrRaised wraps the message of a template's raise_exception call.
var ErrRaised = errors.New("chattemplate: template raised an exception")

// Limits that bound any template's work whatever its input: output size, evaluation steps and
// range() length. Loops only run over finite values, and there is no recursion.
const (
	maxOutput = 64 << 20
	maxSteps  = 2_000_000
	maxRange  = 1_000_000
)

var errLimit = errors.New("chattemplate: template exceeds execution limits")

type errLoopCtl struct{ brk bool }

func (e errLoopCtl) Error() string { return "break/continue outside a loop" }

type renderer struct {
	out    strings.Builder
	scopes []map[string]Value
	steps  int
}

func (r *renderer) step() error {
	r.steps++
	if r.steps > maxSteps || r.out.Len() > maxOutput {
		return errLimit
	}
	return nil
}

func (r *renderer) lookup(name string) Value {
	for i := len(r.scopes) - 1; i >= 0; i-- {
		if v, ok := r.scopes[i][name]; ok {
			return v
		}
	}
	switch name {
	case "raise_exception":
		return builtin(biRaise)
	case "namespace":
		return builtin(biNamespace)
	case "range":
		return builtin(biRange)
	case "dict":
		return builtin(biDict)
	}
	return Undefined{Name: name}
}

func (r *renderer) exec(nodes []node) error {
	for _, n := range nodes {
		if err := r.step(); err != nil {
			return err
		}
		switch n := n.(type) {
		case *textNode:
			r.out.WriteString(n.s)
		case *outputNode:
			v, err := r.eval(n.x)
			if err != nil {
				return err
			}
			r.out.WriteString(toString(v))
		case *ifNode:
			done := false
			for i, c := range n.conds {
				v, err := r.eval(c)
				if err != nil {
					return err
				}
				if truthy(v) {
					if err := r.exec(n.bodies[i]); err != nil {
						return err
					}
					done = true
					break
				}
			}
			if !done && n.els != nil {
				if err := r.exec(n.els); err != nil {
					return err
				}
			}
		case *forNode:
			if err := r.execFor(n); err != nil {
				return err
			}
		case *setNode:
			if err := r.execSet(n); err != nil {
				return err
			}
		case *loopCtl:
			return errLoopCtl{brk: n.brk}
		}
	}
	return nil
}

func (r *renderer) execSet(n *setNode) error {
	var v Value
	if n.body != nil {
		saved := r.out
		r.out = strings.Builder{}
		err := r.exec(n.body)
		v = r.out.String()
		r.out = saved
		if err != nil {
			return err
		}
	} else {
		var err error
		if v, err = r.eval(n.x); err != nil {
			return err
		}
	}
	if n.attr != "" {
		d, ok := r.lookup(n.target).(*Dict)
		if !ok || !d.ns {
			return fmt.Errorf("chattemplate: cannot set attribute %q of %s (only namespace objects)", n.attr, n.target)
		}
		d.Set(n.attr, v)
		return nil
	}
	r.scopes[len(r.scopes)-1][n.target] = v
	return nil
}

func (r *renderer) execFor(n *forNode) error {
	it, err := r.eval(n.iter)
	if err != nil {
		return err
	}
	var items []Value
	switch v := it.(type) {
	case []Value:
		items = v
	case *Dict:
		for _, k := range v.keys {
			items = append(items, k)
		}
	case string:
		for _, c := range v {
			items = append(items, string(c))
		}
	case Undefined, nil:
	default:
		return fmt.Errorf("chattemplate: cannot iterate over %s", typeName(it))
	}
	scope := map[string]Value{}
	r.scopes = append(r.scopes, scope)
	defer func() { r.scopes = r.scopes[:len(r.scopes)-1] }()
	bind := func(item Value) error {
		if len(n.vars) == 1 {
			scope[n.vars[0]] = item
			return nil
		}
		tuple, ok := item.([]Value)
		if !ok || len(tuple) != len(n.vars) {
			return fmt.Errorf("chattemplate: cannot unpack %s into %d loop variables", typeName(item), len(n.vars))
		}
		for i, name := range n.vars {
			scope[name] = tuple[i]
		}
		return nil
	}
	if n.filter != nil {
		var kept []Value
		for _, item := range items {
			if err := bind(item); err != nil {
				return err
			}
			v, err := r.eval(n.filter)
			if err != nil {
				return err
			}
			if truthy(v) {
				kept = append(kept, item)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		if n.els != nil {
			return r.exec(n.els)
		}
		return nil
	}
	for i, item := range items {
		if err := r.step(); err != nil {
			return err
		}
		for k := range scope {
			delete(scope, k)
		}
		if err := bind(item); err != nil {
			return err
		}
		loop := &loopInfo{i: i, items: items}
		scope["loop"] = loop
		err := r.exec(n.body)
		var lc errLoopCtl
		if errors.As(err, &lc) {
			if lc.brk {
				break
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *renderer) eval(x expr) (Value, error) {
	if err := r.step(); err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case *litExpr:
		return x.v, nil
	case *nameExpr:
		return r.lookup(x.name), nil
	case *listExpr:
		out := make([]Value, 0, len(x.items))
		for _, it := range x.items {
			v, err := r.eval(it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *dictExpr:
		d := NewDict()
		for i := range x.keys {
			k, err := r.eval(x.keys[i])
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("chattemplate: dict keys must be strings, got %s", typeName(k))
			}
			v, err := r.eval(x.vals[i])
			if err != nil {
				return nil, err
			}
			d.Set(ks, v)
		}
		return d, nil
	case *attrExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		return getItem(v, x.name, true)
	case *indexExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		i, err := r.eval(x.i)
		if err != nil {
			return nil, err
		}
		return getItem(v, i, false)
	case *sliceExpr:
		return r.evalSlice(x)
	case *callExpr:
		return r.evalCall(x)
	case *filterExpr:
		return r.evalFilter(x)
	case *testExpr:
		v, err := r.evalTest(x)
		if err != nil {
			return nil, err
		}
		return v != x.neg, nil
	case *unaryExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "not":
			return !truthy(v), nil
		case "-":
			switch n := v.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			case bool:
				return -int64(boolInt(n)), nil
			}
			return nil, fmt.Errorf("chattemplate: bad operand for unary -: %s", typeName(v))
		default:
			if _, ok := toNumber(v); !ok {
				return nil, fmt.Errorf("chattemplate: bad operand for unary +: %s", typeName(v))
			}
			return v, nil
		}
	case *binExpr:
		return r.evalBinary(x)
	case *condExpr:
		c, err := r.eval(x.cond)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return r.eval(x.yes)
		}
		if x.no == nil {
			return Undefined{}, nil
		}
		return r.eval(x.no)
	}
	return nil, fmt.Errorf("chattemplate: unknown expression %T", x)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *renderer) evalBinary(x *binExpr) (Value, error) {
	l, err := r.eval(x.l)
	if err != nil {
		return nil, err
	}
	switch x.op {
	case "and":
		if !truthy(l) {
			return l, nil
		}
		return r.eval(x.r)
	case "or":
		if truthy(l) {
			return l, nil
		}
		return r.eval(x.r)
	}
	rv, err := r.eval(x.r)
	if err != nil {
		return nil, err
	}
	switch x.op {
	case "~":
		s := toString(l) + toString(rv)
		if len(s) > maxOutput {
			return nil, errLimit
		}
		return s, nil
	case "==":
		return equal(l, rv), nil
	case "!=":
		return !equal(l, rv), nil
	case "in", "not in":
		in, err := contains(rv, l)
		if err != nil {
			return nil, err
		}
		return in == (x.op == "in"), nil
	case "<", "<=", ">", ">=":
		c, err := compare(l, rv)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	}
	return arith(x.op, l, rv)
}

func arith(op string, l, r Value) (Value, error) {
	if op == "+" {
		switch a := l.(type) {
		case string:
			if b, ok := r.(string); ok {
				if len(a)+len(b) > maxOutput {
					return nil, errLimit
				}
				return a + b, nil
			}
		case []Value:
			if b, ok := r.([]Value); ok {
				out := append(append([]Value(nil), a...), b...)
				return out, nil
			}
		}
	}
	if op == "*" {
		s, isStr := l.(string)
		n, isInt := r.(int64)
		if !isStr {
			s, isStr = r.(string)
			n, isInt = l.(int64)
		}
		if isStr && isInt {
			if n <= 0 {
				return "", nil
			}
			if int64(len(s))*n > maxOutput {
				return nil, errLimit
			}
			return strings.Repeat(s, int(n)), nil
		}
	}
	a, ok1 := toNumber(l)
	b, ok2 := toNumber(r)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("chattemplate: unsupported operand types for %s: %s and %s", op, typeName(l), typeName(r))
	}
	ai, aInt := a.(int64)
	bi, bInt := b.(int64)
	if aInt && bInt {
		switch op {
		case "+":
			return ai + bi, nil
		case "-":
			return ai - bi, nil
		case "*":
			return ai * bi, nil
		case "//", "%":
			if bi == 0 {
				return nil, fmt.Errorf("chattemplate: integer division by zero")
			}
			q, m := ai/bi, ai%bi
			if m != 0 && (m < 0) != (bi < 0) { // Python floors
				q--
				m += bi
			}
			if op == "//" {
				return q, nil
			}
			return m, nil
		case "**":
			if bi >= 0 && bi < 64 {
				res := int64(1)
				for k := int64(0); k < bi; k++ {
					res *= ai
				}
				return res, nil
			}
		}
	}
	af, bf := toFloat(a), toFloat(b)
	switch op {
	case "+":
		return af + bf, nil
	case "-":
		return af - bf, nil
	case "*":
		return af * bf, nil
	case "/":
		if bf == 0 {
			return nil, fmt.Errorf("chattemplate: division by zero")
		}
		return af / bf, nil
	case "//":
		if bf == 0 {
			return nil, fmt.Errorf("chattemplate: division by zero")
		}
		return math.Floor(af / bf), nil
	case "%":
		if bf == 0 {
			return nil, fmt.Errorf("chattemplate: modulo by zero")
		}
		m := math.Mod(af, bf)
		if m != 0 && (m < 0) != (bf < 0) {
			m += bf
		}
		return m, nil
	case "**":
		return math.Pow(af, bf), nil
	}
	return nil, fmt.Errorf("chattemplate: unknown operator %s", op)
}

func toNumber(v Value) (Value, bool) {
	switch n := v.(type) {
	case int64, float64:
		return n, true
	case bool:
		return int64(boolInt(n)), true
	}
	return nil, false
}

func toFloat(v Value) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

func truthy(v Value) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []Value:
		return len(x) > 0
	case *Dict:
		return len(x.keys) > 0
	}
	return true
}

func equal(a, b Value) bool {
	if x, ok := toNumber(a); ok {
		if y, ok := toNumber(b); ok {
			return toFloat(x) == toFloat(y)
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case Undefined:
		_, ok := b.(Undefined)
		return ok
	case []Value:
		y, ok := b.([]Value)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for _, k := range x.keys {
			yv, ok := y.m[k]
			if !ok || !equal(x.m[k], yv) {
				return false
			}
		}
		return true
	}
	return false
}

func compare(a, b Value) (int, error) {
	if x, ok := toNumber(a); ok {
		if y, ok := toNumber(b); ok {
			xf, yf := toFloat(x), toFloat(y)
			switch {
			case xf < yf:
				return -1, nil
			case xf > yf:
				return 1, nil
			}
			return 0, nil
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	}
	return 0, fmt.Errorf("chattemplate: cannot compare %s with %s", typeName(a), typeName(b))
}

func contains(container, item Value) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			return false, fmt.Errorf("chattemplate: 'in <string>' requires a string, got %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case []Value:
		for _, v := range c {
			if equal(v, item) {
				return true, nil
			}
		}
		return false, nil
	case *Dict:
		s, ok := item.(string)
		if !ok {
			return false, nil
		}
		_, in := c.m[s]
		return in, nil
	case Undefined:
		return false, fmt.Errorf("chattemplate: %q is undefined", c.Name)
	}
	return false, fmt.Errorf("chattemplate: argument of type %s is not iterable", typeName(container))
}

// loopInfo is the `loop` variable of a for loop.
type loopInfo struct {
	i     int
	items []Value
}

func (l *loopInfo) attr(name string) Value {
	n := len(l.items)
	switch name {
	case "index0":
		return int64(l.i)
	case "index":
		return int64(l.i + 1)
	case "revindex0":
		return int64(n - 1 - l.i)
	case "revindex":
		return int64(n - l.i)
	case "first":
		return l.i == 0
	case "last":
		return l.i == n-1
	case "length":
		return int64(n)
	case "previtem":
		if l.i > 0 {
			return l.items[l.i-1]
		}
	case "nextitem":
		if l.i+1 < n {
			return l.items[l.i+1]
		}
	}
	return Undefined{Name: "loop." + name}
}

// getItem is Jinja's getattr/getitem: dict keys, list and string indices (negative from the
// end), a few string and dict methods; missing things are Undefined.
func getItem(v Value, key Value, attr bool) (Value, error) {
	switch c := v.(type) {
	case Undefined:
		return nil, fmt.Errorf("chattemplate: %q is undefined", c.Name)
	case *loopInfo:
		if k, ok := key.(string); ok {
			return c.attr(k), nil
		}
	case *Dict:
		if k, ok := key.(string); ok {
			if x, ok := c.m[k]; ok {
				return x, nil
			}
			if attr {
				if m := dictMethod(c, k); m != nil {
					return m, nil
				}
			}
			return Undefined{Name: k}, nil
		}
	case []Value:
		if i, ok := key.(int64); ok {
			if i < 0 {
				i += int64(len(c))
			}
			if i >= 0 && i < int64(len(c)) {
				return c[i], nil
			}
			return Undefined{Name: "index"}, nil
		}
	case string:
		if i, ok := key.(int64); ok {
			runes := []rune(c)
			if i < 0 {
				i += int64(len(runes))
			}
			if i >= 0 && i < int64(len(runes)) {
				return string(runes[i]), nil
			}
			return Undefined{Name: "index"}, nil
		}
		if k, ok := key.(string); ok && attr {
			if m := stringMethod(c, k); m != nil {
				return m, nil
			}
		}
	}
	if s, ok := key.(string); ok {
		return Undefined{Name: s}, nil
	}
	return Undefined{Name: toString(key)}, nil
}

func (r *renderer) evalSlice(x *sliceExpr) (Value, error) {
	v, err := r.eval(x.x)
	if err != nil {
		return nil, err
	}
	var bounds [3]*int64
	for i, e := range []expr{x.lo, x.hi, x.step} {
		if e == nil {
			continue
		}
		b, err := r.eval(e)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		n, ok := b.(int64)
		if !ok {
			return nil, fmt.Errorf("chattemplate: slice indices must be integers")
		}
		bounds[i] = &n
	}
	var n int
	var runes []rune
	list, isList := v.([]Value)
	switch s := v.(type) {
	case []Value:
		n = len(s)
	case string:
		runes = []rune(s)
		n = len(runes)
	default:
		return nil, fmt.Errorf("chattemplate: cannot slice %s", typeName(v))
	}
	idx := pySlice(n, bounds[0], bounds[1], bounds[2])
	if idx == nil && bounds[2] != nil && *bounds[2] == 0 {
		return nil, fmt.Errorf("chattemplate: slice step cannot be zero")
	}
	if isList {
		out := make([]Value, 0, len(idx))
		for _, i := range idx {
			out = append(out, list[i])
		}
		return out, nil
	}
	out := make([]rune, 0, len(idx))
	for _, i := range idx {
		out = append(out, runes[i])
	}
	return string(out), nil
}

// pySlice lists the indices Python's seq[lo:hi:step] selects.
func pySlice(n int, lo, hi, step *int64) []int {
	st := int64(1)
	if step != nil {
		st = *step
	}
	if st == 0 {
		return nil
	}
	clamp := func(p *int64, def int64, low, high int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += int64(n)
		}
		return max(low, min(high, v))
	}
	var out []int
	if st > 0 {
		a := clamp(lo, 0, 0, int64(n))
		b := clamp(hi, int64(n), 0, int64(n))
		for i := a; i < b; i += st {
			out = append(out, int(i))
		}
	} else {
		a := clamp(lo, int64(n)-1, -1, int64(n)-1)
		b := clamp(hi, -1, -1, int64(n)-1)
		if hi == nil {
			b = -1
		}
		for i := a; i > b; i += st {
			out = append(out, int(i))
		}
	}
	if out == nil {
		out = []int{}
	}
	return out
}

func (r *renderer) evalCall(x *callExpr) (Value, error) {
	fn, err := r.eval(x.fn)
	if err != nil {
		return nil, err
	}
	args := make([]Value, 0, len(x.args))
	for _, a := range x.args {
		v, err := r.eval(a)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	var kw map[string]Value
	if len(x.kwargs) > 0 {
		kw = map[string]Value{}
		for _, k := range x.kwKeys {
			v, err := r.eval(x.kwargs[k])
			if err != nil {
				return nil, err
			}
			kw[k] = v
		}
	}
	switch f := fn.(type) {
	case builtin:
		if f == nil {
			break
		}
		if x.kwKeys != nil && kw != nil {
			// keep namespace() keyword order
			kw["\x00order"] = strings.Join(x.kwKeys, "\x00")
		}
		return f(r, args, kw)
	case Undefined:
		return nil, fmt.Errorf("chattemplate: %q is undefined", f.Name)
	}
	return nil, fmt.Errorf("chattemplate: %s is not callable", typeName(fn))
}

func biRaise(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
	msg := ""
	if len(args) > 0 {
		msg = toString(args[0])
	}
	return nil, fmt.Errorf("%w: %s", ErrRaised, msg)
}

func biNamespace(_ *renderer, args []Value, kw map[string]Value) (Value, error) {
	d := NewDict()
	d.ns = true
	if len(args) > 0 {
		if src, ok := args[0].(*Dict); ok {
			for _, k := range src.keys {
				d.Set(k, src.m[k])
			}
		}
	}
	if order, ok := kw["\x00order"].(string); ok {
		for _, k := range strings.Split(order, "\x00") {
			d.Set(k, kw[k])
		}
	}
	return d, nil
}

func biDict(_ *renderer, _ []Value, kw map[string]Value) (Value, error) {
	d := NewDict()
	if order, ok := kw["\x00order"].(string); ok {
		for _, k := range strings.Split(order, "\x00") {
			d.Set(k, kw[k])
		}
	}
	return d, nil
}

func biRange(r *renderer, args []Value, _ map[string]Value) (Value, error) {
	var ints []int64
	for _, a := range args {
		n, ok := a.(int64)
		if !ok {
			return nil, fmt.Errorf("chattemplate: range() needs integers")
		}
		ints = append(ints, n)
	}
	start, stop, step := int64(0), int64(0), int64(1)
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, fmt.Errorf("chattemplate: range() takes 1 to 3 arguments")
	}
	if step == 0 {
		return nil, fmt.Errorf("chattemplate: range() step cannot be zero")
	}
	var out []Value
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(out) >= maxRange {
			return nil, errLimit
		}
		if err := r.step(); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

func stringMethod(s, name string) Value {
	strArg := func(args []Value, i int, def string) (string, error) {
		if i >= len(args) || args[i] == nil {
			return def, nil
		}
		a, ok := args[i].(string)
		if !ok {
			return "", fmt.Errorf("chattemplate: %s() needs a string argument", name)
		}
		return a, nil
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		return builtin(func(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
			if len(args) > 0 && args[0] != nil {
				cut, err := strArg(args, 0, "")
				if err != nil {
					return nil, err
				}
				switch name {
				case "strip":
					return strings.Trim(s, cut), nil
				case "lstrip":
					return strings.TrimLeft(s, cut), nil
				}
				return strings.TrimRight(s, cut), nil
			}
			switch name {
			case "strip":
				return pyStrip(s, true, true), nil
			case "lstrip":
				return pyStrip(s, true, false), nil
			}
			return pyStrip(s, false, true), nil
		})
	case "startswith", "endswith":
		return builtin(func(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
			var cands []string
			if len(args) > 0 {
				if list, ok := args[0].([]Value); ok {
					for _, c := range list {
						cs, ok := c.(string)
						if !ok {
							return nil, fmt.Errorf("chattemplate: %s() needs strings", name)
						}
						cands = append(cands, cs)
					}
				} else {
					a, err := strArg(args, 0, "")
					if err != nil {
						return nil, err
					}
					cands = []string{a}
				}
			}
			for _, c := range cands {
				if name == "startswith" && strings.HasPrefix(s, c) || name == "endswith" && strings.HasSuffix(s, c) {
					return true, nil
				}
			}
			return false, nil
		})
	case "upper":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) { return strings.ToUpper(s), nil })
	case "lower":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) { return strings.ToLower(s), nil })
	case "title":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) { return pyTitle(s), nil })
	case "replace":
		return builtin(func(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
			old, err := strArg(args, 0, "")
			if err != nil {
				return nil, err
			}
			nw, err := strArg(args, 1, "")
			if err != nil {
				return nil, err
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("chattemplate: replace() takes 2 arguments")
			}
			return strings.ReplaceAll(s, old, nw), nil
		})
	case "split":
		return builtin(func(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
			var parts []string
			if len(args) == 0 || args[0] == nil {
				parts = strings.Fields(s)
			} else {
				sep, err := strArg(args, 0, "")
				if err != nil {
					return nil, err
				}
				if sep == "" {
					return nil, fmt.Errorf("chattemplate: split() empty separator")
				}
				parts = strings.Split(s, sep)
			}
			out := make([]Value, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		})
	}
	return nil
}

func dictMethod(d *Dict, name string) Value {
	switch name {
	case "items":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) {
			out := make([]Value, 0, len(d.keys))
			for _, k := range d.keys {
				out = append(out, []Value{k, d.m[k]})
			}
			return out, nil
		})
	case "keys":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) {
			out := make([]Value, 0, len(d.keys))
			for _, k := range d.keys {
				out = append(out, k)
			}
			return out, nil
		})
	case "values":
		return builtin(func(*renderer, []Value, map[string]Value) (Value, error) {
			out := make([]Value, 0, len(d.keys))
			for _, k := range d.keys {
				out = append(out, d.m[k])
			}
			return out, nil
		})
	case "get":
		return builtin(func(_ *renderer, args []Value, _ map[string]Value) (Value, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("chattemplate: get() needs a key")
			}
			if k, ok := args[0].(string); ok {
				if v, ok := d.m[k]; ok {
					return v, nil
				}
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return nil, nil
		})
	}
	return nil
}

func pyStrip(s string, left, right bool) string {
	f := func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r > 127 && isUnicodeSpace(r)
	}
	if left {
		s = strings.TrimLeftFunc(s, f)
	}
	if right {
		s = strings.TrimRightFunc(s, f)
	}
	return s
}

func isUnicodeSpace(r rune) bool {
	switch r {
	case 0x1C, 0x1D, 0x1E, 0x1F, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		isLetter := strings.ToUpper(string(r)) != strings.ToLower(string(r))
		if isLetter {
			if prevCased {
				b.WriteString(strings.ToLower(string(r)))
			} else {
				b.WriteString(strings.ToUpper(string(r)))
			}
		} else {
			b.WriteRune(r)
		}
		prevCased = isLetter
	}
	return b.String()
}

func (r *renderer) evalFilter(x *filterExpr) (Value, error) {
	v, err := r.eval(x.x)
	if err != nil {
		return nil, err
	}
	args := make([]Value, 0, len(x.args))
	for _, a := range x.args {
		av, err := r.eval(a)
		if err != nil {
			return nil, err
		}
		args = append(args, av)
	}
	kw := map[string]Value{}
	for k, e := range x.kwargs {
		kv, err := r.eval(e)
		if err != nil {
			return nil, err
		}
		kw[k] = kv
	}
	switch x.name {
	case "trim":
		return pyStrip(toString(v), true, true), nil
	case "length", "count":
		switch c := v.(type) {
		case string:
			return int64(utf8.RuneCountInString(c)), nil
		case []Value:
			return int64(len(c)), nil
		case *Dict:
			return int64(len(c.keys)), nil
		case Undefined:
			return int64(0), nil
		}
		return nil, fmt.Errorf("chattemplate: object of type %s has no length", typeName(v))
	case "string":
		return toString(v), nil
	case "upper":
		return strings.ToUpper(toString(v)), nil
	case "lower":
		return strings.ToLower(toString(v)), nil
	case "title":
		return pyTitle(toString(v)), nil
	case "capitalize":
		s := toString(v)
		if s == "" {
			return s, nil
		}
		first, size := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(first)) + strings.ToLower(s[size:]), nil
	case "default", "d":
		useFalsy := len(args) > 1 && truthy(args[1])
		if b, ok := kw["boolean"]; ok {
			useFalsy = truthy(b)
		}
		_, undef := v.(Undefined)
		if undef || useFalsy && !truthy(v) {
			if len(args) > 0 {
				return args[0], nil
			}
			return "", nil
		}
		return v, nil
	case "first", "last":
		var list []Value
		switch c := v.(type) {
		case []Value:
			list = c
		case string:
			for _, ch := range c {
				list = append(list, string(ch))
			}
		default:
			return nil, fmt.Errorf("chattemplate: %s of %s", x.name, typeName(v))
		}
		if len(list) == 0 {
			return Undefined{Name: x.name}, nil
		}
		if x.name == "first" {
			return list[0], nil
		}
		return list[len(list)-1], nil
	case "join":
		list, ok := v.([]Value)
		if !ok {
			return nil, fmt.Errorf("chattemplate: join of %s", typeName(v))
		}
		sep := ""
		if len(args) > 0 {
			sep = toString(args[0])
		}
		parts := make([]string, len(list))
		for i, it := range list {
			parts[i] = toString(it)
		}
		s := strings.Join(parts, sep)
		if len(s) > maxOutput {
			return nil, errLimit
		}
		return s, nil
	case "list":
		switch c := v.(type) {
		case []Value:
			return append([]Value(nil), c...), nil
		case string:
			var out []Value
			for _, ch := range c {
				out = append(out, string(ch))
			}
			return out, nil
		case *Dict:
			out := make([]Value, 0, len(c.keys))
			for _, k := range c.keys {
				out = append(out, k)
			}
			return out, nil
		}
		return nil, fmt.Errorf("chattemplate: list of %s", typeName(v))
	case "reverse":
		switch c := v.(type) {
		case []Value:
			out := make([]Value, len(c))
			for i := range c {
				out[i] = c[len(c)-1-i]
			}
			return out, nil
		case string:
			rs := []rune(c)
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
			return string(rs), nil
		}
		return nil, fmt.Errorf("chattemplate: reverse of %s", typeName(v))
	case "int":
		switch c := v.(type) {
		case int64:
			return c, nil
		case float64:
			return int64(c), nil
		case bool:
			return int64(boolInt(c)), nil
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(c), 10, 64)
			if err != nil {
				return int64(0), nil
			}
			return n, nil
		}
		return int64(0), nil
	case "tojson":
		indent := -1
		if n, ok := kw["indent"].(int64); ok {
			indent = int(n)
		} else if len(args) > 0 {
			if n, ok := args[0].(int64); ok {
				indent = int(n)
			}
		}
		var b strings.Builder
		if err := writeJSON(&b, v, indent, 0); err != nil {
			return nil, err
		}
		return b.String(), nil
	case "items":
		if d, ok := v.(*Dict); ok {
			return dictMethod(d, "items").(builtin)(r, nil, nil)
		}
		return nil, fmt.Errorf("chattemplate: items of %s", typeName(v))
	case "safe", "e", "escape":
		if x.name == "safe" {
			return v, nil
		}
		return escapeHTML(toString(v)), nil
	}
	return nil, fmt.Errorf("chattemplate: unsupported filter %q", x.name)
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&#34;", "'", "&#39;").Replace(s)
}

func (r *renderer) evalTest(x *testExpr) (bool, error) {
	v, err := r.eval(x.x)
	if err != nil {
		return false, err
	}
	switch x.name {
	case "defined":
		_, undef := v.(Undefined)
		return !undef, nil
	case "undefined":
		_, undef := v.(Undefined)
		return undef, nil
	case "none":
		return v == nil, nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "number":
		switch v.(type) {
		case int64, float64:
			return true, nil
		}
		return false, nil
	case "integer":
		_, ok := v.(int64)
		return ok, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true":
		b, ok := v.(bool)
		return ok && b, nil
	case "false":
		b, ok := v.(bool)
		return ok && !b, nil
	case "mapping":
		_, ok := v.(*Dict)
		return ok, nil
	case "sequence", "iterable":
		switch v.(type) {
		case []Value, string, *Dict:
			return true, nil
		}
		return false, nil
	case "odd", "even":
		n, ok := v.(int64)
		if !ok {
			return false, fmt.Errorf("chattemplate: %s test needs an integer", x.name)
		}
		return (n%2 != 0) == (x.name == "odd"), nil
	case "eq", "equalto", "sameas", "ne", "in":
		if len(x.args) != 1 {
			return false, fmt.Errorf("chattemplate: %s test needs one argument", x.name)
		}
		a, err := r.eval(x.args[0])
		if err != nil {
			return false, err
		}
		switch x.name {
		case "ne":
			return !equal(v, a), nil
		case "in":
			return contains(a, v)
		}
		return equal(v, a), nil
	}
	return false, fmt.Errorf("chattemplate: unsupported test %q", x.name)
}

func typeName(v Value) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []Value:
		return "list"
	case *Dict:
		return "dict"
	case Undefined:
		return "Undefined"
	case builtin:
		return "function"
	case *loopInfo:
		return "LoopContext"
	}
	return fmt.Sprintf("%T", v)
}

// toString is Python's str() as Jinja prints values; Undefined prints as nothing.
func toString(v Value) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case Undefined:
		return ""
	case string:
		return x
	}
	return repr(v)
}

func repr(v Value) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case Undefined:
		return ""
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return pyFloat(x)
	case string:
		return pyQuote(x)
	case []Value:
		parts := make([]string, len(x))
		for i, it := range x {
			parts[i] = repr(it)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *Dict:
		parts := make([]string, len(x.keys))
		for i, k := range x.keys {
			parts[i] = pyQuote(k) + ": " + repr(x.m[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case builtin:
		return "<function>"
	case *loopInfo:
		return "<LoopContext>"
	}
	return "<object>"
}

func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if strings.ContainsAny(s, "e") {
		// Python writes 1e+16 as 1e+16 and 1e-05 with two exponent digits.
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

func pyQuote(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// writeJSON is Python's json.dumps(v, ensure_ascii=False) with its default separators, which
// is what transformers installs as the chat-template `tojson` filter.
func writeJSON(b *strings.Builder, v Value, indent, depth int) error {
	if b.Len() > maxOutput || depth > 100 {
		return errLimit
	}
	nl := func(d int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	itemSep := ", "
	if indent >= 0 {
		itemSep = ","
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case Undefined:
		return fmt.Errorf("chattemplate: tojson of undefined %q", x.Name)
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(x))
		}
	case string:
		enc, err := json.Marshal(x)
		if err != nil {
			return err
		}
		// encoding/json escapes <, >, & and U+2028/9 for HTML; Python does not.
		s := string(enc)
		s = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
		b.WriteString(s)
	case []Value:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteString(itemSep)
			}
			nl(depth + 1)
			if err := writeJSON(b, it, indent, depth+1); err != nil {
				return err
			}
		}
		if len(x) > 0 {
			nl(depth)
		}
		b.WriteByte(']')
	case *Dict:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(itemSep)
			}
			nl(depth + 1)
			if err := writeJSON(b, k, indent, depth+1); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := writeJSON(b, x.m[k], indent, depth+1); err != nil {
				return err
			}
		}
		if len(x.keys) > 0 {
			nl(depth)
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("chattemplate: tojson of %s", typeName(v))
	}
	return nil
}

// FromGo converts ordinary Go values (maps, slices, numbers, strings, Message) to template
// values. Map keys are sorted, since Go maps have no order.
func FromGo(v any) (Value, error) {
	switch y := v.(type) {
	case nil:
		return nil, nil
	case bool, int64, float64, string, *Dict, Undefined:
		return y, nil
	case int:
		return int64(y), nil
	case int32:
		return int64(y), nil
	case float32:
		return float64(y), nil
	case Message:
		d := NewDict()
		d.Set("role", y.Role)
		d.Set("content", y.Content)
		return d, nil
	case []Message:
		out := make([]Value, len(y))
		for i, m := range y {
			out[i], _ = FromGo(m)
		}
		return out, nil
	case []string:
		out := make([]Value, len(y))
		for i, s := range y {
			out[i] = s
		}
		return out, nil
	case []any:
		out := make([]Value, len(y))
		for i, it := range y {
			c, err := FromGo(it)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case []map[string]any:
		out := make([]Value, len(y))
		for i, it := range y {
			c, err := FromGo(it)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(y))
		for k := range y {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			c, err := FromGo(y[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			d.Set(k, c)
		}
		return d, nil
	case map[string]string:
		keys := make([]string, 0, len(y))
		for k := range y {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			d.Set(k, y[k])
		}
		return d, nil
	}
	return nil, fmt.Errorf("chattemplate: unsupported Go value of type %T", v)
}
