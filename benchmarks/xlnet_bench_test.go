package benchmarks

import (
	"context"
	"fmt"
	"testing"

	"github.com/clinfer/clinfer/weights"
	"github.com/clinfer/clinfer/xlnet"
)

// xlnetBase is xlnet-base-cased with a 13-label token-classification head, the shape of
// torch_anchor.py's "xlnet" model.
func xlnetBase() *weights.Config {
	return &weights.Config{ModelType: "xlnet", Architectures: []string{"XLNetForTokenClassification"},
		ID2Label: LabelMap(13),
		XLNet: &weights.XLNetConfig{VocabSize: 32000, DModel: 768, NLayer: 12, NHead: 12, DHead: 64, DInner: 3072,
			FFActivation: "gelu", LayerNormEps: 1e-12, AttnType: "bi", ClampLen: -1, UntieR: true, PadTokenID: 5,
			SummaryType: "last", SummaryUseProj: true, SummaryActivation: "tanh"}}
}

// xlnetFLOPs counts the multiply-adds (2 flops each) of the products the forward pass needs:
// q/k/v, o and the feed-forward per token, and per head the content, position and value
// products over T x T scores. The positional keys r·R depend on no input and are computed at
// load, so they are not counted (PyTorch recomputes them, 2T x d_model x d_model per layer).
func xlnetFLOPs(c *weights.XLNetConfig, B, T int) float64 {
	M, ND, I, L := float64(c.DModel), float64(c.NHead*c.DHead), float64(c.DInner), float64(c.NLayer)
	tok := float64(B * T)
	linear := 2 * tok * (3*M*ND + ND*M + 2*M*I)
	attn := 2 * 3 * float64(B) * float64(T) * float64(T) * ND
	return L * (linear + attn)
}

// BenchmarkXLNetBase: xlnet-base token classifier at batch 1 x 128 and 1 x 512 tokens, random
// weights. Compare with `torch_anchor.py --models xlnet` at the same thread count
// (GOMAXPROCS); the anchor at 2 threads: 307 ms (128) and 1826 ms (512).
func BenchmarkXLNetBase(b *testing.B) {
	cfg := xlnetBase()
	m, err := xlnet.NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, T := range []int{128, 512} {
		B := 1
		b.Run(fmt.Sprintf("b%dx%d", B, T), func(b *testing.B) {
			in := xlnet.Batch{Batch: B, Length: T, IDs: make([]int, B*T), TypeIDs: make([]int, B*T)}
			for i := range in.IDs {
				in.IDs[i] = 6 + (i*7919)%(cfg.XLNet.VocabSize-6)
			}
			// XLNet layout: ... <sep> <cls> with token type 2 on <cls>.
			in.TypeIDs[T-1] = 2
			benchForward(b, B*T, xlnetFLOPs(cfg.XLNet, B, T), func(ctx context.Context) error {
				_, err := m.Forward(ctx, in)
				return err
			})
		})
	}
}
