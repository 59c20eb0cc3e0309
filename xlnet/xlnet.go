package xlnet

import (
	"fmt"
	"math"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/clinfer/clinfer/internal/nn"
	"github.com/clinfer/clinfer/tensorops"
)

// The weights, one struct per Hugging Face submodule. `ckpt` tags are checkpoint names
// relative to the enclosing module ("transformer." for the encoder, nothing for heads);
// `shape` tags name the dimensions: vocab, model (d_model), heads (n_head), head (d_head),
// inner (d_inner), labels.

// RelAttention is XLNetRelativeAttention (transformer.layer.N.rel_attn), content stream only:
// the query stream and its target mapping are pretraining machinery and never run at
// inference. The projections are einsum weights [d_model, n_head, d_head], not nn.Linear.
type RelAttention struct {
	Q        []float32 `ckpt:"q" shape:"model,heads,head"`
	K        []float32 `ckpt:"k" shape:"model,heads,head"`
	V        []float32 `ckpt:"v" shape:"model,heads,head"`
	O        []float32 `ckpt:"o" shape:"model,heads,head"`
	R        []float32 `ckpt:"r" shape:"model,heads,head"`
	RWBias   []float32 `ckpt:"r_w_bias" shape:"heads,head"`      // content bias (term ac)
	RRBias   []float32 `ckpt:"r_r_bias" shape:"heads,head"`      // position bias (term bd)
	RSBias   []float32 `ckpt:"r_s_bias" shape:"heads,head"`      // segment bias (term ef)
	SegEmbed []float32 `ckpt:"seg_embed" shape:"two,heads,head"` // [same segment, different segment]
	LNWeight []float32 `ckpt:"layer_norm.weight" shape:"model"`
	LNBias   []float32 `ckpt:"layer_norm.bias" shape:"model"`
}

// FeedForward is XLNetFeedForward (transformer.layer.N.ff):
// LayerNorm(layer_2(act(layer_1(x))) + x).
type FeedForward struct {
	Layer1W  []float32 `ckpt:"layer_1.weight" shape:"inner,model"`
	Layer1B  []float32 `ckpt:"layer_1.bias" shape:"inner"`
	Layer2W  []float32 `ckpt:"layer_2.weight" shape:"model,inner"`
	Layer2B  []float32 `ckpt:"layer_2.bias" shape:"model"`
	LNWeight []float32 `ckpt:"layer_norm.weight" shape:"model"`
	LNBias   []float32 `ckpt:"layer_norm.bias" shape:"model"`
}

// Layer is XLNetLayer (transformer.layer.N).
type Layer struct {
	Attn RelAttention `ckpt:"rel_attn."`
	FF   FeedForward  `ckpt:"ff."`

	// Packed at load; the raw projection slices above are released after packing.
	qkv      *tensorops.Linear // [q; k; v] transposed to [3*n*d, d_model], bias [r_w_bias; 0; 0]
	o        *tensorops.Linear // o read as [d_model, n*d]: already nn.Linear's [out, in]
	ff1, ff2 *tensorops.Linear
	// kr holds the positional keys r·R for every relative distance the model accepts:
	// row g is distance maxLen - g (g in [0, 2*maxLen)), [2*maxLen, n*d]. They depend on
	// no input, so they are computed once at load instead of in every forward pass.
	kr []float32
	// r_r_bias - r_w_bias and r_s_bias - r_w_bias: the packed query already carries
	// r_w_bias, so the position and segment terms add the difference.
	dRR, dRS []float32
}

// transposeProj turns an einsum weight [d_model, n*d] into nn.Linear's [n*d, d_model].
func transposeProj(w []float32, model, nd int) []float32 {
	out := make([]float32, len(w))
	for h := 0; h < model; h++ {
		for j := 0; j < nd; j++ {
			out[j*model+h] = w[h*nd+j]
		}
	}
	return out
}

// pack builds the kernels' weights and the positional keys of every distance up to maxLen.
func (l *Layer) pack(e *tensorops.Engine, model, nd, inner int, posEmb []float32, maxLen int) {
	a := &l.Attn
	w := make([]float32, 0, 3*nd*model)
	w = append(w, transposeProj(a.Q, model, nd)...)
	w = append(w, transposeProj(a.K, model, nd)...)
	w = append(w, transposeProj(a.V, model, nd)...)
	b := make([]float32, 3*nd)
	copy(b, a.RWBias)
	l.qkv = tensorops.NewLinear(w, 3*nd, model, b)
	l.o = tensorops.NewLinear(a.O, model, nd, nil)
	l.ff1 = tensorops.NewLinear(l.FF.Layer1W, inner, model, l.FF.Layer1B)
	l.ff2 = tensorops.NewLinear(l.FF.Layer2W, model, inner, l.FF.Layer2B)
	r := tensorops.NewLinear(transposeProj(a.R, model, nd), nd, model, nil)
	l.kr = make([]float32, 2*maxLen*nd)
	e.Forward(r, l.kr, posEmb, 2*maxLen)
	l.dRR = make([]float32, nd)
	l.dRS = make([]float32, nd)
	for i := range l.dRR {
		l.dRR[i] = a.RRBias[i] - a.RWBias[i]
		l.dRS[i] = a.RSBias[i] - a.RWBias[i]
	}
	a.Q, a.K, a.V, a.O, a.R = nil, nil, nil, nil, nil
	l.FF.Layer1W, l.FF.Layer1B, l.FF.Layer2W, l.FF.Layer2B = nil, nil, nil, nil
}

// positionalEmbedding is XLNetModel.relative_positional_encoding for attn_type "bi" without
// bi_data, over every distance the model accepts: row g holds distance d = maxLen - g as
// [sin(d·inv_freq), cos(d·inv_freq)], with d clamped to ±clampLen when clampLen > 0. A
// padded length T uses the rows for d = T .. -T+1, which is Hugging Face's pos_seq
// (klen down to -qlen, exclusive). Arithmetic follows the reference in float32.
func positionalEmbedding(model, maxLen, clampLen int) []float32 {
	half := model / 2
	inv := make([]float32, half)
	for i := range inv {
		e := float32(2*i) / float32(model)
		inv[i] = 1 / float32(math.Pow(10000, float64(e)))
	}
	out := make([]float32, 2*maxLen*model)
	for g := 0; g < 2*maxLen; g++ {
		d := maxLen - g
		if clampLen > 0 {
			d = max(-clampLen, min(clampLen, d))
		}
		row := out[g*model : (g+1)*model]
		for i, f := range inv {
			x := float32(d) * f
			row[i] = float32(math.Sin(float64(x)))
			row[half+i] = float32(math.Cos(float64(x)))
		}
	}
	return out
}

// graph variants (bit set)
const (
	variantHidden = 1 // keep every layer's hidden states as outputs
	variantNoSeg  = 2 // no token_type_ids: Hugging Face drops the segment term
)

// graph input and output names
const (
	inIDs     = "input_ids"
	inTypes   = "token_type_ids"
	inPad     = "input_mask" // float32 [B, T]: 1 for padding, as Hugging Face's input_mask
	outLast   = "last_hidden_state"
	outSum    = "sequence_summary"
	outLogits = "logits"
)

func hiddenName(i int) string { return fmt.Sprintf("hidden_states.%d", i) }

// build describes the forward pass for one (batch, padded length):
//
//	h0 = word_embedding[ids]
//	per layer: a = LayerNorm(o(relattn(h)) + h); h = LayerNorm(layer_2(act(layer_1(a))) + a)
//	then the head (classifier on every token, or summary+tanh then logits_proj on the last).
//
// Sequences are padded on the left (XLNet's own layout), so the last position is the same
// for every sequence of a bucket.
func (m *Model) build(b *nn.Builder, k nn.Key) error {
	B, T, M := k.Batch, k.Length, m.model
	ids := b.Input(inIDs, tensor.Int, B, T)
	types := b.Input(inTypes, tensor.Int, B, T)
	pad := b.Input(inPad, tensor.Float32, B, T)

	h := b.Embed("word_embedding", M, []nn.EmbeddingTable{
		{Name: m.prefix + "word_embedding.weight", Data: m.Word, Rows: len(m.Word) / M},
	}, ids)
	keep := k.Variant&variantHidden != 0
	if keep {
		b.Output(hiddenName(0), h)
	}
	// Per-graph scratch shared by its layers: they run one after another.
	scratch := &attnScratch{}
	for i := range m.Layers {
		l := &m.Layers[i]
		name := fmt.Sprintf("layer.%d", i)
		qkv := b.Linear(name+".qkv", h, l.qkv, nn.ActNone)
		ctx := b.Apply(m.relAttnOp(name+".rel_attn", l, scratch, B, T, k.Variant&variantNoSeg == 0), qkv, types, pad)
		a := b.LayerNorm(name+".rel_attn.layer_norm", b.LinearAdd(name+".rel_attn.o", ctx, l.o, h),
			l.Attn.LNWeight, l.Attn.LNBias, m.eps)
		f := b.Linear(name+".ff.layer_1", a, l.ff1, m.act)
		h = b.LayerNorm(name+".ff.layer_norm", b.LinearAdd(name+".ff.layer_2", f, l.ff2, a),
			l.FF.LNWeight, l.FF.LNBias, m.eps)
		if keep {
			b.Output(hiddenName(i+1), h)
		}
	}
	switch m.head {
	case HeadNone:
		if !keep {
			b.Output(outLast, h)
		}
	case HeadToken:
		b.Output(outLogits, b.Linear("classifier", h, m.classifier, nn.ActNone))
	case HeadSequence:
		last := b.SelectRow("sequence_summary", h, B, T, T-1)
		var s *gorgonia.Node
		if m.summary != nil {
			s = b.Linear("sequence_summary.summary", last, m.summary, m.summaryAct)
		} else {
			s = b.Activate("sequence_summary", last, m.summaryAct)
		}
		b.Output(outSum, s)
		b.Output(outLogits, b.Linear("logits_proj", s, m.classifier, nn.ActNone))
	}
	return b.Err()
}

// attnScratch is per-graph memory shared by its layers: the padding positions of the
// current inputs.
type attnScratch struct{ pads [][]int }

// padKeys lists the padding positions of each sequence (input_mask != 0).
func (sc *attnScratch) padKeys(pad []float32, B, T int) [][]int {
	if len(sc.pads) != B {
		sc.pads = make([][]int, B)
	}
	for b := range sc.pads {
		sc.pads[b] = sc.pads[b][:0]
		for j, v := range pad[b*T : (b+1)*T] {
			if v != 0 {
				sc.pads[b] = append(sc.pads[b], j)
			}
		}
	}
	return sc.pads
}

// serial runs the per-head products inside an op that already spreads heads over threads.
var serial = sync.OnceValue(func() *tensorops.Engine { return tensorops.NewEngine(1) })

// relBlock is the most query rows whose position scores are computed by one product.
const relBlock = 64

var bdPool sync.Pool

// relAttnOp is the content stream of XLNetRelativeAttention.rel_attn_core for one layer:
//
//	score[b,n,i,j] = ((q_i+r_w)·k_j + (q_i+r_r)·kr[i-j] + (q_i+r_s)·seg[s_ij]) · scale
//	               - 1e30 where key j is padding and j != i (non_tgt_mask)
//
// with s_ij = 1 when token_type_ids differ, then softmax over j and the weighted sum of
// the values. Work is split by (sequence, block of query rows): for every head the
// position and segment terms and the mask become a score bias [n, rows, T], and
// tensorops.Attention on the block adds scale·(q+r_w)·k, does the softmax and the values,
// so no [B, n, T, T] tensor is ever stored. Inputs: qkv [B*T, 3*n*d] (q carrying r_w_bias),
// token types int [B, T], input_mask float32 [B, T]; output [B*T, n*d].
func (m *Model) relAttnOp(name string, l *Layer, sc *attnScratch, B, T int, seg bool) *nn.Op {
	N, D := m.heads, m.headDim
	nd := N * D
	scale := float32(1 / math.Sqrt(float64(D)))
	// Rows of l.kr for distances T .. -T+1 (HF's pos_seq for klen = qlen = T).
	krOff := (m.maxLen - T) * nd
	k := func(e *tensorops.Engine, dst []float32, in []gorgonia.Value) error {
		fl, err := nn.Floats(in[0], in[2])
		if err != nil {
			return err
		}
		types, err := nn.Ints(in[1])
		if err != nil {
			return err
		}
		qkv, pad := fl[0], fl[1]
		padKeys := sc.padKeys(pad, B, T)
		// Blocks of at most relBlock rows, and enough of them to keep every thread busy.
		blocks := max(ceilDiv(T, relBlock), min(ceilDiv(2*e.Threads(), B), ceilDiv(T, 16)))
		rowsPer := ceilDiv(T, blocks)
		blocks = ceilDiv(T, rowsPer)
		work := func(u int) {
			bp, _ := bdPool.Get().(*[]float32)
			if bp == nil {
				bp = new([]float32)
			}
			b, blk := u/blocks, u%blocks
			i0 := blk * rowsPer
			i1 := min(i0+rowsPer, T)
			rows := i1 - i0
			// Query i needs positional keys p = T-i+j for j in [0, T): the block needs
			// p in [T-i1+1, 2T-i0).
			pLo := T - i1 + 1
			width := T + rows - 1
			need := rows*D + rows*width + N*rows*T
			if cap(*bp) < need {
				*bp = make([]float32, need)
			}
			buf := (*bp)[:need]
			qr, bd, bias := buf[:rows*D], buf[rows*D:rows*D+rows*width], buf[rows*D+rows*width:]
			for n := 0; n < N; n++ {
				dr := l.dRR[n*D : (n+1)*D]
				for r := 0; r < rows; r++ {
					q := qkv[(b*T+i0+r)*3*nd+n*D:][:D]
					out := qr[r*D:][:D]
					for d, x := range q {
						out[d] = x + dr[d]
					}
				}
				serial().Sgemm(false, true, rows, width, D, 1, qr, D, l.kr[krOff+pLo*nd+n*D:], nd, 0, bd, width)
				seg0 := l.Attn.SegEmbed[n*D : (n+1)*D]
				seg1 := l.Attn.SegEmbed[nd+n*D : nd+(n+1)*D]
				ds := l.dRS[n*D : (n+1)*D]
				for r := 0; r < rows; r++ {
					i := i0 + r
					out := bias[(n*rows+r)*T:][:T]
					// Key j's position score is in column T-i+j-pLo of the block's product.
					row := bd[r*width+T-i-pLo:][:T]
					if seg {
						var ef0, ef1 float32
						q := qkv[(b*T+i)*3*nd+n*D:][:D]
						for d, x := range q {
							qs := x + ds[d]
							ef0 += qs * seg0[d]
							ef1 += qs * seg1[d]
						}
						ti := types[b*T+i]
						tr := types[b*T : (b+1)*T][:T]
						for j, v := range row {
							e := ef1
							if tr[j] == ti {
								e = ef0
							}
							out[j] = (v + e) * scale
						}
					} else {
						for j, v := range row {
							out[j] = v * scale
						}
					}
					// non_tgt_mask: padding keys are hidden from every query but their own.
					for _, j := range padKeys[b] {
						if j != i {
							out[j] -= 1e30
						}
					}
				}
			}
			base := b * T * 3 * nd
			serial().Attention(dst[(b*T+i0)*nd:], qkv[(b*T+i0)*3*nd:], qkv[base+nd:], qkv[base+2*nd:], tensorops.AttentionParams{
				Batch: 1, Heads: N, KVHeads: N, QLen: rows, KVLen: T, HeadDim: D,
				LDQ: 3 * nd, LDKV: 3 * nd, LDO: nd, Scale: scale, Bias: bias,
			})
			bdPool.Put(bp)
		}
		parallel(e.Threads(), B*blocks, work)
		return nil
	}
	return nn.NewOp(fmt.Sprintf("%s:RelAttention[%dx%d]", name, N, D), tensor.Shape{B * T, nd},
		[]tensor.Shape{{B * T, 3 * nd}, {B, T}, {B, T}}, []tensor.Dtype{tensor.Float32, tensor.Int, tensor.Float32}, k)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// parallel runs fn(0..n-1) on up to threads goroutines (the caller included).
func parallel(threads, n int, fn func(int)) {
	workers := min(threads, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	claim := func() int {
		mu.Lock()
		defer mu.Unlock()
		i := next
		next++
		return i
	}
	body := func() {
		for i := claim(); i < n; i = claim() {
			fn(i)
		}
	}
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() { defer wg.Done(); body() }()
	}
	body()
	wg.Wait()
}
