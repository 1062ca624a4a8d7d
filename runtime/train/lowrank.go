package train

import "github.com/finlora/finlora/runtime/tensor"

// lowRankGemmer is a backend with a separate entry for the products of a low-rank adapter branch
// (runtime/cuda: GemmLowRank, float32 products on TF32 tensor cores unless FINLORA_LORA_TF32=0).
type lowRankGemmer interface {
	GemmLowRank(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error
}

// loraGemm is tensor.Backend.Gemm for an adapter product (x·Aᵀ, xa·Bᵀ and their gradients): the
// backend's GemmLowRank where it has one, else Gemm. Same shapes and semantics as Gemm.
func (g *graph) loraGemm(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
	if lg, ok := g.b.(lowRankGemmer); ok {
		return lg.GemmLowRank(out, a, w, transA, transB, alpha, beta)
	}
	return g.b.Gemm(out, a, w, transA, transB, alpha, beta)
}
