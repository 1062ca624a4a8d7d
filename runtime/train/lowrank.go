package train

import "github.com/finlora/finlora/runtime/tensor"

// lowRankGemmer is a backend with a separate entry for the products of a low-rank adapter branch
// (runtime/cuda: GemmLowRank, float32 products on TF32 tensor cores unless FINLORA_LORA_TF32=0).
type lowRankGemmer interface {
	GemmLowRank(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error
}

// loraGemm is tensor.Backend.Gemm for a product of the adapter on frozen linear base (x·Aᵀ, xa·Bᵀ
// and their gradients): the backend's GemmLowRank where it has one and the base is held in 16 bits
// or quantized (its products already round their operands to bf16, so TF32 adapter products add
// no error of a larger order), else Gemm: a float32 base keeps float32 adapter products (the PEFT
// parity fixtures are float32 and hold 1e-5 / 1e-4 bounds). Same shapes and semantics as Gemm.
func (g *graph) loraGemm(base frozen, out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
	if lg, ok := g.b.(lowRankGemmer); ok && base.lowPrecision() {
		return lg.GemmLowRank(out, a, w, transA, transB, alpha, beta)
	}
	return g.b.Gemm(out, a, w, transA, transB, alpha, beta)
}

// lowPrecision reports whether the frozen weight's products run on 16-bit operands (a BF16/F16
// dense weight or a quantized one).
func (f frozen) lowPrecision() bool {
	return f.packed != nil || (f.dense != nil && (f.dense.DType() == tensor.BF16 || f.dense.DType() == tensor.F16))
}
