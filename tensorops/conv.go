package tensorops

// Conv2DPatch is a 2-D convolution whose kernel size equals its stride (a ViT / LayoutLMv3 patch
// embedding): img [c, h, w], weight [outC, c, patch, patch] as PyTorch stores a Conv2d weight,
// bias [outC] or nil. out [(h/patch)*(w/patch), outC] receives one row per patch in row-major
// patch order, which is the layout after PyTorch's flatten(2).transpose(1, 2). Like Conv2d
// without padding, trailing rows and columns that do not fill a patch are ignored.
//
// The image is unfolded (im2col) into [patches, c*patch*patch] with columns in the weight's
// (channel, ky, kx) order, so the convolution is one GEMM against the weight as stored.
func (e *Engine) Conv2DPatch(out, img []float32, c, h, w int, weight []float32, outC, patch int, bias []float32) {
	const op = "Conv2DPatch"
	if c < 0 || h < 0 || w < 0 || outC < 0 {
		opPanic(op, "negative shape c=%d h=%d w=%d outC=%d", c, h, w, outC)
	}
	if patch <= 0 {
		opPanic(op, "patch=%d, want > 0", patch)
	}
	if len(img) < c*h*w {
		opPanic(op, "len(img)=%d < c*h*w=%d", len(img), c*h*w)
	}
	kdim := c * patch * patch
	if len(weight) < outC*kdim {
		opPanic(op, "len(weight)=%d < outC*c*patch*patch=%d", len(weight), outC*kdim)
	}
	checkVec(op, "bias", bias, outC, true)
	ph, pw := h/patch, w/patch
	np := ph * pw
	if len(out) < np*outC {
		opPanic(op, "len(out)=%d < patches*outC=%d", len(out), np*outC)
	}
	if np == 0 || outC == 0 {
		return
	}
	if kdim == 0 {
		// No input channels: every output is the bias (the GEMM rejects an empty k stride).
		for r := 0; r < np; r++ {
			if bias != nil {
				copy(out[r*outC:(r+1)*outC], bias)
			} else {
				clear(out[r*outC : (r+1)*outC])
			}
		}
		return
	}
	cols := make([]float32, np*kdim)
	for py := 0; py < ph; py++ {
		for px := 0; px < pw; px++ {
			row := cols[(py*pw+px)*kdim:]
			t := 0
			for ch := 0; ch < c; ch++ {
				for ky := 0; ky < patch; ky++ {
					src := img[ch*h*w+(py*patch+ky)*w+px*patch:]
					copy(row[t:t+patch], src[:patch])
					t += patch
				}
			}
		}
	}
	e.Sgemm(false, true, np, outC, kdim, 1, cols, kdim, weight, kdim, 0, out, outC)
	if bias != nil {
		AddBias(out, np, outC, bias)
	}
}
