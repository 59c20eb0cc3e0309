package xlnet

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/clinfer/clinfer/weights"
)

// naiveForward is XLNetModel + XLNetForTokenClassification written out loop by loop in
// float64 from modeling_xlnet.py (attn_type "bi", no mems), with the relative shift done as
// Hugging Face does it: scores against pos_seq = klen .. -qlen+1, then rel_shift_bnij. It
// reads the checkpoint directly and knows nothing of the graph, the packing, the buckets or
// the precomputed positional keys. Returns logits [B][T][labels].
func naiveForward(t *testing.T, s weights.Store, c *weights.XLNetConfig, labels int, ids, mask, types [][]int) [][][]float64 {
	t.Helper()
	get := func(name string, shape ...int) []float64 {
		v, err := weights.Expect(s, name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	M, N, D, I := c.DModel, c.NHead, c.DHead, c.DInner
	ND := N * D
	B, T := len(ids), len(ids[0])
	word := get("transformer.word_embedding.weight", c.VocabSize, M)
	// pos_emb over pos_seq = T .. -T+1 (2T rows), inv_freq = 1/10000^(2i/d_model).
	P := 2 * T
	pos := make([][]float64, P)
	for p := range pos {
		d := float64(T - p)
		pos[p] = make([]float64, M)
		for i := 0; i < M/2; i++ {
			x := d / math.Pow(10000, float64(2*i)/float64(M))
			pos[p][i], pos[p][M/2+i] = math.Sin(x), math.Cos(x)
		}
	}
	layerNorm := func(x, g, b []float64) []float64 {
		var mean, vr float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(x))
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = (v-mean)/math.Sqrt(vr+c.LayerNormEps)*g[i] + b[i]
		}
		return out
	}
	// proj applies an einsum weight [M, n*d] ("ibh,hnd->ibnd").
	proj := func(x, w []float64) []float64 {
		out := make([]float64, ND)
		for h := 0; h < M; h++ {
			for j := 0; j < ND; j++ {
				out[j] += x[h] * w[h*ND+j]
			}
		}
		return out
	}
	linear := func(x, w, b []float64, out int) []float64 {
		y := make([]float64, out)
		for o := range y {
			y[o] = b[o]
			for i, v := range x {
				y[o] += v * w[o*len(x)+i]
			}
		}
		return y
	}
	logits := make([][][]float64, B)
	for bi := 0; bi < B; bi++ {
		h := make([][]float64, T)
		for i := range h {
			h[i] = append([]float64(nil), word[ids[bi][i]*M:(ids[bi][i]+1)*M]...)
		}
		for l := 0; l < c.NLayer; l++ {
			pre := fmt.Sprintf("transformer.layer.%d.", l)
			wq, wk, wv := get(pre+"rel_attn.q", M, N, D), get(pre+"rel_attn.k", M, N, D), get(pre+"rel_attn.v", M, N, D)
			wo, wr := get(pre+"rel_attn.o", M, N, D), get(pre+"rel_attn.r", M, N, D)
			rw, rr, rs := get(pre+"rel_attn.r_w_bias", N, D), get(pre+"rel_attn.r_r_bias", N, D), get(pre+"rel_attn.r_s_bias", N, D)
			seg := get(pre+"rel_attn.seg_embed", 2, N, D)
			q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
			for i := range h {
				q[i], k[i], v[i] = proj(h[i], wq), proj(h[i], wk), proj(h[i], wv)
			}
			kr := make([][]float64, P)
			for p := range kr {
				kr[p] = proj(pos[p], wr)
			}
			attn := make([][]float64, T)
			for i := range attn {
				attn[i] = make([]float64, ND)
			}
			for n := 0; n < N; n++ {
				// bd over all 2T positions, then the shift: bd[i][j] = bdFull[i][T-i+j].
				for i := 0; i < T; i++ {
					bdFull := make([]float64, P)
					for p := range bdFull {
						for d := 0; d < D; d++ {
							bdFull[p] += (q[i][n*D+d] + rr[n*D+d]) * kr[p][n*D+d]
						}
					}
					var ef [2]float64
					for s := 0; s < 2; s++ {
						for d := 0; d < D; d++ {
							ef[s] += (q[i][n*D+d] + rs[n*D+d]) * seg[s*ND+n*D+d]
						}
					}
					score := make([]float64, T)
					best := math.Inf(-1)
					for j := 0; j < T; j++ {
						var ac float64
						for d := 0; d < D; d++ {
							ac += (q[i][n*D+d] + rw[n*D+d]) * k[j][n*D+d]
						}
						sd := 0
						if types[bi][i] != types[bi][j] {
							sd = 1
						}
						score[j] = (ac + bdFull[T-i+j] + ef[sd]) / math.Sqrt(float64(D))
						if mask[bi][j] == 0 && i != j {
							score[j] -= 1e30
						}
						best = math.Max(best, score[j])
					}
					var sum float64
					for j := range score {
						score[j] = math.Exp(score[j] - best)
						sum += score[j]
					}
					for j := range score {
						for d := 0; d < D; d++ {
							attn[i][n*D+d] += score[j] / sum * v[j][n*D+d]
						}
					}
				}
			}
			for i := range h {
				o := make([]float64, M)
				for hh := 0; hh < M; hh++ {
					for j := 0; j < ND; j++ {
						o[hh] += attn[i][j] * wo[hh*ND+j]
					}
					o[hh] += h[i][hh]
				}
				a := layerNorm(o, get(pre+"rel_attn.layer_norm.weight", M), get(pre+"rel_attn.layer_norm.bias", M))
				f := linear(a, get(pre+"ff.layer_1.weight", I, M), get(pre+"ff.layer_1.bias", I), I)
				for x := range f {
					f[x] = 0.5 * f[x] * (1 + math.Erf(f[x]/math.Sqrt2))
				}
				f = linear(f, get(pre+"ff.layer_2.weight", M, I), get(pre+"ff.layer_2.bias", M), M)
				for x := range f {
					f[x] += a[x]
				}
				h[i] = layerNorm(f, get(pre+"ff.layer_norm.weight", M), get(pre+"ff.layer_norm.bias", M))
			}
		}
		logits[bi] = make([][]float64, T)
		for i := range h {
			logits[bi][i] = linear(h[i], get("classifier.weight", labels, M), get("classifier.bias", labels), labels)
		}
	}
	return logits
}

// TestLongSequenceAgainstNaive checks lengths the fixtures do not reach: several 64-row blocks
// of the position term, a padded bucket (150 tokens run as 160), left padding inside the batch
// and mixed segments, against naiveForward on the xlnet_token_cls weights.
func TestLongSequenceAgainstNaive(t *testing.T) {
	dir := filepath.Join(fixturesDir(), "xlnet_token_cls")
	cfg, err := weights.LoadConfig(dir)
	if err != nil {
		t.Skipf("no xlnet_token_cls fixture: %v", err)
	}
	s, err := weights.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := LoadFromStore(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	const B, T, padded = 2, 150, 23
	r := rand.New(rand.NewPCG(3, 4))
	ids, mask, types := make([][]int, B), make([][]int, B), make([][]int, B)
	for b := range ids {
		ids[b], mask[b], types[b] = make([]int, T), make([]int, T), make([]int, T)
		for i := range ids[b] {
			ids[b][i], mask[b][i] = 6+r.IntN(cfg.XLNet.VocabSize-6), 1
			switch {
			case b == 0 && i < padded:
				ids[b][i], mask[b][i], types[b][i] = cfg.XLNet.PadTokenID, 0, 3
			case i == T-1:
				types[b][i] = 2
			case b == 1 && i > 70:
				types[b][i] = 1
			}
		}
	}
	want := naiveForward(t, s, cfg.XLNet, len(cfg.Labels()), ids, mask, types)
	in, err := NewBatch(ids, mask, types)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Forward(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	n := res.NumLabels
	worst := 0.0
	for b := range want {
		for i := range want[b] {
			for l, w := range want[b][i] {
				got := float64(res.Logits[(b*T+i)*n+l])
				if d := math.Abs(got-w) / (1e-4 + 1e-4*math.Abs(w)); d > worst {
					worst = d
				}
				if math.Abs(got-w) > 1e-4+1e-4*math.Abs(w) {
					t.Fatalf("logits[%d][%d][%d] = %g, naive float64 %g", b, i, l, got, w)
				}
			}
		}
	}
	t.Logf("worst |got-want|/(1e-4+1e-4|want|) = %.3g", worst)
}
