package qwen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"
)

// GenerateOptions control decoding. The zero value (plus MaxNewTokens) is greedy search with
// the model's eos ids as stop tokens, as transformers' generate(do_sample=False).
type GenerateOptions struct {
	MaxNewTokens int // > 0

	// DoSample draws from the processed distribution; otherwise the arg max is taken.
	// Temperature, TopK, TopP and MinP only apply when sampling (transformers' warpers),
	// in transformers' order: temperature, top-k, top-p, min-p.
	DoSample    bool
	Temperature float32 // <= 0 means 1
	TopK        int     // <= 0: off (transformers' generation default of 50 is not implied)
	TopP        float32 // <= 0 or >= 1: off
	MinP        float32 // <= 0: off
	// Seed seeds one generator per sequence (seed, index in the call), so a sequence's draws do
	// not depend on the other sequences of its batch.
	Seed uint64

	// RepetitionPenalty (transformers' RepetitionPenaltyLogitsProcessor, applied in greedy and
	// sampling modes; <= 0 or 1 means off): every token id present in the row's input ids,
	// prompt and generated tokens, has its logit divided by the penalty when positive and
	// multiplied when negative. As in transformers, the row's input ids include the left
	// padding of a batched prompt, so the pad token is penalized in padded rows.
	RepetitionPenalty float32

	// StopTokenIDs end a sequence when generated (the token is kept in Tokens). nil means the
	// model's eos ids; an empty non-nil slice disables stop tokens.
	StopTokenIDs []int
	// StopStrings end a sequence when its decoded text (special tokens skipped) contains one
	// of them; Result.Text and the streamed text stop just before it. Needs a Tokenizer.
	StopStrings []string

	// Stream, when set, is called after every generated token, in order, from the calling
	// goroutine. Returning false ends that sequence (StopCallback).
	Stream func(Event) bool

	// logitsHook lets tests see the logits that chose each token (after no processing).
	logitsHook func(seq, step int, logits []float32)
}

// Event reports one generated token.
type Event struct {
	Seq   int    // index of the prompt in the call
	Index int    // index of the token among the sequence's new tokens
	Token int    // token id
	Text  string // newly completed text (needs a Tokenizer; may be empty mid-character)
}

// StopReason says why a sequence ended.
type StopReason int

const (
	StopMaxTokens   StopReason = iota // MaxNewTokens reached
	StopToken                         // a stop token id was generated
	StopString                        // a stop string appeared in the text
	StopMaxPosition                   // the next position would reach max_position_embeddings
	StopCallback                      // Stream returned false
	StopCanceled                      // the context was canceled
)

func (r StopReason) String() string {
	switch r {
	case StopMaxTokens:
		return "max_tokens"
	case StopToken:
		return "stop_token"
	case StopString:
		return "stop_string"
	case StopMaxPosition:
		return "max_position"
	case StopCallback:
		return "callback"
	case StopCanceled:
		return "canceled"
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}

// Result is one sequence's output.
type Result struct {
	Tokens []int  // generated tokens (a stop token is included)
	Text   string // decoded Tokens, without a stop token and cut before a stop string (needs a Tokenizer)
	Reason StopReason
}

// prefillRows bounds the rows (batch × prompt chunk) of one prefill pass.
const prefillRows = 512

// seqState is the per-sequence bookkeeping of a generation call.
type seqState struct {
	idx       int
	promptLen int
	nextPos   int
	tokens    []int
	done      bool
	reason    StopReason
	rng       *rand.Rand
	seen      []bool // token ids present in the row's input ids (repetition penalty)
	seenList  []int
	emitted   int // bytes of text already streamed
}

func (q *seqState) see(id int) {
	if q.seen != nil && !q.seen[id] {
		q.seen[id] = true
		q.seenList = append(q.seenList, id)
	}
}

// GenerateText tokenizes each prompt with the model's tokenizer, then generates.
func (m *Model) GenerateText(ctx context.Context, prompts []string, opt GenerateOptions) ([]Result, error) {
	if m.tok == nil {
		return nil, errors.New("qwen: GenerateText needs a Tokenizer (Options.Tokenizer)")
	}
	ids := make([][]int, len(prompts))
	for i, p := range prompts {
		var err error
		if ids[i], err = m.tok.Encode(p); err != nil {
			return nil, fmt.Errorf("qwen: prompt %d: %w", i, err)
		}
	}
	return m.Generate(ctx, ids, opt)
}

// Generate continues each prompt (token ids, no padding). Prompts of different lengths are
// left-padded into one batch exactly as transformers does (position ids cumsum(mask)-1,
// padded keys masked), and each sequence stops on its own. On cancellation the results so
// far are returned with the context's error.
func (m *Model) Generate(ctx context.Context, prompts [][]int, opt GenerateOptions) ([]Result, error) {
	c := &m.Config
	if len(prompts) == 0 {
		return nil, errors.New("qwen: Generate: no prompts")
	}
	if opt.MaxNewTokens <= 0 {
		return nil, fmt.Errorf("qwen: Generate: MaxNewTokens must be > 0, got %d", opt.MaxNewTokens)
	}
	if len(opt.StopStrings) > 0 && m.tok == nil {
		return nil, errors.New("qwen: Generate: StopStrings need a Tokenizer (Options.Tokenizer)")
	}
	stops := opt.StopTokenIDs
	if stops == nil {
		stops = c.EOSTokenIDs
	}
	B := len(prompts)
	maxLen, minLen := 0, math.MaxInt
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("qwen: Generate: prompt %d is empty", i)
		}
		if len(p) > c.MaxPositionEmbeddings {
			return nil, fmt.Errorf("%w: prompt %d has %d tokens, max_position_embeddings %d", ErrTooLong, i, len(p), c.MaxPositionEmbeddings)
		}
		for _, id := range p {
			if id < 0 || id >= c.VocabSize {
				return nil, fmt.Errorf("qwen: Generate: prompt %d: token id %d outside the vocabulary [0, %d)", i, id, c.VocabSize)
			}
		}
		maxLen, minLen = max(maxLen, len(p)), min(minLen, len(p))
	}
	// A sequence feeds at most min(MaxNewTokens-1, maxPos-len) generated tokens back.
	capacity := maxLen + min(opt.MaxNewTokens, c.MaxPositionEmbeddings-minLen)
	// Long prompts are prefilled in chunks so activation buffers stay bounded; each chunk
	// attends to the cache written by the previous ones.
	chunk := min(maxLen, max(1, prefillRows/B))
	s := m.getState(B*chunk, B, capacity)
	defer m.pool.Put(s)
	V, H := c.VocabSize, c.HiddenSize
	kvDim := c.NumKeyValueHeads * c.HeadDim

	seqs := make([]*seqState, B)
	keyMask := make([]float32, B*capacity)
	padded := make([]int, B*maxLen)
	positions := make([]int, B*maxLen)
	penalize := opt.RepetitionPenalty > 0 && opt.RepetitionPenalty != 1
	for b, p := range prompts {
		q := &seqState{idx: b, promptLen: len(p), nextPos: len(p)}
		if opt.DoSample {
			q.rng = rand.New(rand.NewPCG(opt.Seed, uint64(b)))
		}
		if penalize {
			q.seen = make([]bool, V)
		}
		pad := maxLen - len(p)
		for j := 0; j < maxLen; j++ {
			if j < pad {
				keyMask[b*capacity+j] = -math.MaxFloat32
				padded[b*maxLen+j] = c.PadTokenID
				positions[b*maxLen+j] = 1
				q.see(c.PadTokenID)
			} else {
				padded[b*maxLen+j] = p[j-pad]
				positions[b*maxLen+j] = j - pad
				q.see(p[j-pad])
			}
		}
		seqs[b] = q
	}
	ids := make([]int, B*chunk)
	for c0 := 0; c0 < maxLen; c0 += chunk {
		tc := min(chunk, maxLen-c0)
		for b := 0; b < B; b++ {
			copy(ids[b*tc:(b+1)*tc], padded[b*maxLen+c0:])
			copy(s.positions[b*tc:(b+1)*tc], positions[b*maxLen+c0:])
		}
		if err := m.W.Embed.lookup(s.x[:B*tc*H], ids[:B*tc]); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.decode(s, step{b: B, t: tc, past: c0, keyMask: keyMask}, nil)
		if c0+tc == maxLen {
			for b := 0; b < B; b++ {
				copy(s.lastRows[b*H:(b+1)*H], s.xn[(b*tc+tc-1)*H:])
			}
		}
	}
	logits := s.logits[:B*V]
	m.eng.Forward(m.W.LMHead, logits, s.lastRows[:B*H], B)

	active := slices.Clone(seqs) // slot i of the cache and of logits holds active[i]
	var probs []float32
	var cand []int
	filled := maxLen // cache entries written per slot
	for stepN := 0; ; stepN++ {
		for i, q := range active {
			row := logits[i*V : (i+1)*V]
			if opt.logitsHook != nil {
				opt.logitsHook(q.idx, stepN, row)
			}
			tok := m.choose(row, q, &opt, &probs, &cand)
			m.accept(q, tok, stops, &opt)
		}
		// Finished sequences leave the batch: the last active slot moves into the hole, so
		// the next step only computes live rows.
		for i := 0; i < len(active); {
			if !active[i].done {
				i++
				continue
			}
			last := len(active) - 1
			if i != last {
				for l := range s.k {
					src, dst := last*capacity*kvDim, i*capacity*kvDim
					copy(s.k[l][dst:dst+filled*kvDim], s.k[l][src:src+filled*kvDim])
					copy(s.v[l][dst:dst+filled*kvDim], s.v[l][src:src+filled*kvDim])
				}
				copy(keyMask[i*capacity:(i+1)*capacity], keyMask[last*capacity:(last+1)*capacity])
			}
			active[i] = active[last]
			active = active[:last]
		}
		if len(active) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			for _, q := range active {
				q.done, q.reason = true, StopCanceled
			}
			return m.results(seqs, &opt), err
		}
		n := len(active)
		for i, q := range active {
			ids[i] = q.tokens[len(q.tokens)-1]
			s.positions[i] = q.nextPos
			q.nextPos++
			keyMask[i*capacity+filled] = 0
		}
		if err := m.W.Embed.lookup(s.x[:n*H], ids[:n]); err != nil {
			return nil, err
		}
		m.decode(s, step{b: n, t: 1, past: filled, keyMask: keyMask}, nil)
		filled++
		logits = s.logits[:n*V]
		m.eng.Forward(m.W.LMHead, logits, s.xn[:n*H], n)
	}
	return m.results(seqs, &opt), nil
}

// accept appends tok to q and decides whether q is finished.
func (m *Model) accept(q *seqState, tok int, stops []int, opt *GenerateOptions) {
	q.tokens = append(q.tokens, tok)
	q.see(tok)
	switch {
	case slices.Contains(stops, tok):
		q.done, q.reason = true, StopToken
	case len(q.tokens) >= opt.MaxNewTokens:
		q.done, q.reason = true, StopMaxTokens
	case q.nextPos >= m.Config.MaxPositionEmbeddings:
		q.done, q.reason = true, StopMaxPosition
	}
	text := ""
	if m.tok != nil {
		if full, err := m.tok.Decode(q.tokens); err == nil {
			end := len(full)
			if cut := stopIndex(full, opt.StopStrings); cut >= 0 {
				q.done, q.reason = true, StopString
				end = cut
			} else if !q.done {
				// Hold back trailing U+FFFD: the bytes of a character split across tokens
				// decode as a replacement until its last byte arrives.
				for end > q.emitted {
					r, size := utf8.DecodeLastRuneInString(full[:end])
					if r != utf8.RuneError {
						break
					}
					end -= size
				}
			}
			if end > q.emitted {
				text = full[q.emitted:end]
				q.emitted = end
			}
		}
	}
	if opt.Stream != nil && !opt.Stream(Event{Seq: q.idx, Index: len(q.tokens) - 1, Token: tok, Text: text}) && !q.done {
		q.done, q.reason = true, StopCallback
	}
}

// stopIndex is the earliest byte index of any stop string in s, or -1.
func stopIndex(s string, stops []string) int {
	cut := -1
	for _, x := range stops {
		if j := strings.Index(s, x); x != "" && j >= 0 && (cut < 0 || j < cut) {
			cut = j
		}
	}
	return cut
}

func (m *Model) results(seqs []*seqState, opt *GenerateOptions) []Result {
	out := make([]Result, len(seqs))
	for i, q := range seqs {
		out[i] = Result{Tokens: q.tokens, Reason: q.reason}
		if m.tok == nil {
			continue
		}
		toks := q.tokens
		if q.reason == StopToken && len(toks) > 0 {
			toks = toks[:len(toks)-1]
		}
		text, err := m.tok.Decode(toks)
		if err != nil {
			continue
		}
		if cut := stopIndex(text, opt.StopStrings); q.reason == StopString && cut >= 0 {
			text = text[:cut]
		}
		out[i].Text = text
	}
	return out
}

// choose applies transformers' logits processing to row (in place) and picks a token.
func (m *Model) choose(row []float32, q *seqState, opt *GenerateOptions, probsBuf *[]float32, candBuf *[]int) int {
	if q.seen != nil {
		p := opt.RepetitionPenalty
		for _, id := range q.seenList {
			if v := row[id]; v < 0 {
				row[id] = v * p
			} else {
				row[id] = v / p
			}
		}
	}
	if !opt.DoSample {
		return argmax(row)
	}
	if t := opt.Temperature; t > 0 && t != 1 {
		for i := range row {
			row[i] /= t
		}
	}
	return sample(row, q.rng, opt, probsBuf, candBuf)
}

// argmax returns the first index of the largest value, as torch.argmax does.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// sample applies top-k, top-p and min-p (transformers' warper semantics with
// min_tokens_to_keep = 1) to the logits and draws one token.
func sample(row []float32, rng *rand.Rand, opt *GenerateOptions, probsBuf *[]float32, candBuf *[]int) int {
	cand := (*candBuf)[:0]
	for i, v := range row {
		if !math.IsInf(float64(v), -1) && !math.IsNaN(float64(v)) {
			cand = append(cand, i)
		}
	}
	defer func() { *candBuf = cand[:0] }()
	if len(cand) == 0 {
		return argmax(row)
	}
	byLogitDesc := func(a, b int) int {
		if row[a] > row[b] {
			return -1
		}
		if row[a] < row[b] {
			return 1
		}
		return a - b
	}
	// top-k: drop every token whose logit is below the k-th largest (ties with it stay).
	if k := opt.TopK; k > 0 && k < len(cand) {
		kth := kthLargest(row, cand, k)
		kept := cand[:0]
		for _, i := range cand {
			if row[i] >= kth {
				kept = append(kept, i)
			}
		}
		cand = kept
	}
	probs := softmaxOver(row, cand, probsBuf)
	// top-p: in ascending order, drop tokens while the cumulative probability (including the
	// token) stays <= 1-top_p; the most likely token always stays.
	if p := opt.TopP; p > 0 && p < 1 && len(cand) > 1 {
		limit := 1 - float64(p)
		// Tokens below limit/len(cand) all sort before the rest and together weigh less than
		// limit, so they are dropped without sorting them.
		tiny := limit / float64(len(cand))
		var cum float64
		kept := cand[:0]
		keptP := probs[:0]
		for j, i := range cand {
			if float64(probs[j]) < tiny {
				cum += float64(probs[j])
				continue
			}
			kept = append(kept, i)
			keptP = append(keptP, probs[j])
		}
		cand, probs = kept, keptP
		order := make([]int, len(cand))
		for j := range order {
			order[j] = j
		}
		slices.SortFunc(order, func(a, b int) int { return byLogitDesc(cand[b], cand[a]) })
		drop := make([]bool, len(cand))
		for r, j := range order {
			cum += float64(probs[j])
			if cum <= limit && r < len(order)-1 {
				drop[j] = true
			}
		}
		kept = cand[:0]
		for j, i := range cand {
			if !drop[j] {
				kept = append(kept, i)
			}
		}
		cand = kept
		probs = softmaxOver(row, cand, probsBuf)
	}
	// min-p: drop tokens less likely than min_p times the most likely one.
	if mp := opt.MinP; mp > 0 && len(cand) > 1 {
		var top float32
		for _, v := range probs {
			top = max(top, v)
		}
		thr := mp * top
		kept := cand[:0]
		for j, i := range cand {
			if probs[j] >= thr {
				kept = append(kept, i)
			}
		}
		cand = kept
		probs = softmaxOver(row, cand, probsBuf)
	}
	u := rng.Float64()
	var cum float64
	for j, i := range cand {
		cum += float64(probs[j])
		if u < cum {
			return i
		}
	}
	return cand[len(cand)-1]
}

// softmaxOver returns the softmax of row restricted to cand, in cand's order.
func softmaxOver(row []float32, cand []int, buf *[]float32) []float32 {
	if cap(*buf) < len(cand) {
		*buf = make([]float32, len(cand))
	}
	p := (*buf)[:len(cand)]
	mx := float32(math.Inf(-1))
	for _, i := range cand {
		mx = max(mx, row[i])
	}
	var sum float64
	for j, i := range cand {
		e := math.Exp(float64(row[i] - mx))
		p[j] = float32(e)
		sum += e
	}
	for j := range p {
		p[j] = float32(float64(p[j]) / sum)
	}
	return p
}

// kthLargest returns the k-th largest value of row over cand (1-based k <= len(cand)).
func kthLargest(row []float32, cand []int, k int) float32 {
	vals := make([]float32, len(cand))
	for j, i := range cand {
		vals[j] = row[i]
	}
	// Quickselect for position k-1 in descending order.
	lo, hi, target := 0, len(vals)-1, k-1
	for lo < hi {
		pivot := vals[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for vals[i] > pivot {
				i++
			}
			for vals[j] < pivot {
				j--
			}
			if i <= j {
				vals[i], vals[j] = vals[j], vals[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return vals[target]
		}
	}
	return vals[target]
}
