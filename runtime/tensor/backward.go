package tensor

// Backward is the extension interface with the backward ops of training (issue 4). A backend that
// can train implements it besides Backend; callers find it with a type assertion:
//
//	bw, ok := b.(tensor.Backward)
//
// Only activation gradients are computed here: the base weights are frozen, and the few weight
// gradients training needs (LoRA's A and B, DoRA's magnitude) are Gemm products and SumRows.
// Conventions are those of Ops: every output is preallocated by the caller, F32, overwritten (not
// accumulated) unless the method says otherwise; gradients have the shape of what they are the
// gradient of. The backward of Gemm is Gemm with transposes, of Rope is Rope with the table −sin,
// of Embedding nothing (token ids get no gradient and the table is frozen).
type Backward interface {
	// RMSNormBackward sets dx = ∂L/∂x of out = RMSNorm(x, w, eps, addOne) given dy = ∂L/∂out;
	// x, dy, dx are [.., D] F32, w [D] F32/F16/BF16 (no gradient for w). dx may alias dy.
	RMSNormBackward(dx, dy, x, w *Tensor, eps float32, addOne bool) error
	// SwiGLUBackward sets dgate and dup of out = silu(gate) ⊙ up given dy (all the same element
	// count, F32). dgate may alias gate and dup may alias up (they are read before written per element).
	SwiGLUBackward(dgate, dup, dy, gate, up *Tensor) error
	// AttentionBackward sets dq [B, T, Hq, D], dk and dv [B, S, Hkv, D] of out = Attention(q, k, v, p)
	// given dout [B, T, Hq, D]; out is the forward output. The visible slots are those of Ops.Attention
	// with the same p; p.LSE, if set, is the forward's log-sum-exp (a backend may use it instead of
	// recomputing it). dk and dv sum over the query heads sharing a kv head; key slots no query sees
	// get zero.
	AttentionBackward(dq, dk, dv, dout, q, k, v, out *Tensor, p AttentionParams) error
	// CrossEntropyBackward sets dlogits[i, :] = scale·(softmax(logits[i, :]) − onehot(labels[i])) for
	// logits [N, V] F32 and labels I32 [N]; rows whose label is −100 get zeros. With scale =
	// 1/(number of counted labels) this is the gradient of HF's mean loss. dlogits may alias logits.
	CrossEntropyBackward(dlogits, logits, labels *Tensor, scale float32) error
	// SumRows sets out[c] = beta·out[c] + Σ_r x[r, c] for x seen as a matrix [R, C] and out [C] F32.
	SumRows(out, x *Tensor, beta float32) error
	// MulCols sets out[r, c] = x[r, c]·v[c] for x and out [R, C] F32 (seen as matrices), v [C] F32.
	// In place allowed (out = x).
	MulCols(out, x, v *Tensor) error
	// SumSquares returns Σ x² over all elements of a float tensor, accumulated in float64 (for
	// gradient norms).
	SumSquares(x *Tensor) (float64, error)
}
