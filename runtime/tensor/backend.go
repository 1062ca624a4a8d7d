package tensor

// Backend is a compute device: it owns tensor storage (Memory) and runs the forward ops (Ops).
// Every method validates shapes and dtypes and returns an error (wrapping ErrShape, ErrDType,
// ErrFreed, ErrBackend or ErrUnsupported) instead of panicking. A backend is safe for use by one
// goroutine at a time unless its documentation says otherwise; its ops may parallelize internally.
//
// Extension: backward ops (issue 4) and quantized matmuls belong in further interfaces defined next
// to this one (e.g. `type Backward interface { ... }` in backward.go) that a backend implements in
// addition; callers discover them with a type assertion (`bw, ok := b.(tensor.Backward)`), so adding
// them never breaks an existing backend. Capabilities reports what is there for display.
type Backend interface {
	// Name is the registry name ("cpu", "cuda:0").
	Name() string
	// Capabilities describes the device and the dtypes it accepts.
	Capabilities() Capabilities
	Memory
	Ops
}

// Capabilities is what a backend reports about itself (gomlx style): for display, for choosing
// dtypes at load time, and for tests that skip what a backend cannot do.
type Capabilities struct {
	Device           string   // human description: "CPU (16 goroutines)", "NVIDIA H100 80GB HBM3"
	WeightDTypes     []DType  // storage dtypes accepted for weights (Gemm's b, Embedding's table, norm weights)
	ActivationDTypes []DType  // dtypes of activations and op outputs (F32 on every backend for now)
	Parallelism      int      // worker goroutines (CPU) or streaming multiprocessors (GPU)
	TotalMemory      int64    // bytes of device memory; 0 if unknown (host memory on the CPU)
	Extensions       []string // names of extension interfaces implemented, e.g. "backward"
}

// MemStats counts the bytes of live tensors a backend allocated (views not counted).
type MemStats struct {
	Current int64 // bytes allocated and not yet freed
	Peak    int64 // the highest Current since the backend was made
	Tensors int   // live tensor count
}

// Memory allocates, transfers and frees tensors. Every returned *Tensor is owned by the caller, who
// frees it with Tensor.Free. Host slices passed in are copied (the caller may reuse them); host
// slices returned are fresh copies owned by the caller.
type Memory interface {
	// Alloc returns a zero-filled tensor.
	Alloc(dtype DType, shape ...int) (*Tensor, error)
	// FromHost copies raw little-endian element bytes (len = numel·dtype.Size()), e.g. a safetensors
	// payload, into a new tensor of that dtype.
	FromHost(dtype DType, shape []int, raw []byte) (*Tensor, error)
	// FromFloat32 makes a float tensor of dtype F32, F16 or BF16 from float32 values (rounding to
	// nearest even when narrowing).
	FromFloat32(dtype DType, shape []int, data []float32) (*Tensor, error)
	// FromInt32 makes an I32 tensor.
	FromInt32(shape []int, data []int32) (*Tensor, error)
	// ToHost returns the raw little-endian element bytes.
	ToHost(t *Tensor) ([]byte, error)
	// ToFloat32 returns the elements of a float tensor widened to float32, in row-major order.
	ToFloat32(t *Tensor) ([]float32, error)
	// ToInt32 returns the elements of an I32 tensor.
	ToInt32(t *Tensor) ([]int32, error)
	// Copy copies src into dst (same element count, shapes may differ); float dtypes convert
	// (F32/F16/BF16 in any direction), other dtypes must be equal.
	Copy(dst, src *Tensor) error
	// Fill sets every element of a float tensor to v.
	Fill(t *Tensor, v float32) error
	// Free releases t's storage. Prefer t.Free(), which also handles views and double frees.
	Free(t *Tensor) error
	// MemStats reports live and peak bytes.
	MemStats() MemStats
}

// Ops are the forward ops of a Llama-family decoder. Conventions for all of them:
//   - "out" arguments are preallocated by the caller with the documented shape and dtype F32; ops
//     never allocate their outputs, so a caller controls all memory (and can reuse buffers).
//   - Inputs named "weight"-like (Gemm's b, RMSNorm's w, Embedding's table, bias) may be F32, F16 or
//     BF16 (see Capabilities.WeightDTypes); all other float inputs are F32. Compute is float32.
//   - A tensor of rank > 2 seen "as a matrix" is [Rows, Cols] = [prod(shape[:-1]), shape[-1]].
//   - "in place allowed" means out may be the same tensor as the named input; otherwise out must not
//     alias any input.
type Ops interface {
	// Gemm computes out = alpha·op(a)·op(b) + beta·out, with op(x) = xᵀ when trans is set, every
	// operand seen as a matrix. op(a) is [M,K], op(b) is [K,N], out is [M,N] F32 (any shape with
	// Rows=M, Cols=N). a is F32; b may be F32/F16/BF16. beta=0 ignores out's old contents (NaN safe).
	// The HF Linear (y = x·Wᵀ, W [out,in]) is Gemm(y, x, W, false, true, 1, 0). Accumulation is at
	// least float32; the CPU reference accumulates in float64 (order-independent results).
	Gemm(out, a, b *Tensor, transA, transB bool, alpha, beta float32) error
	// AddBias adds bias [N] to every row of x [.., N] in place.
	AddBias(x, bias *Tensor) error
	// Add sets out = a + alpha·b elementwise (same element count). In place allowed (out = a or b).
	Add(out, a, b *Tensor, alpha float32) error
	// Mul sets out = a ⊙ b elementwise (same element count). In place allowed.
	Mul(out, a, b *Tensor) error
	// Scale sets out = s·x. In place allowed.
	Scale(out, x *Tensor, s float32) error
	// RMSNorm normalizes each row of x [.., D]: out = x / sqrt(mean(x²) + eps) · w, with w [D]; when
	// addOne is set the factor is (1 + w) (Gemma). In place allowed.
	RMSNorm(out, x, w *Tensor, eps float32, addOne bool) error
	// Rope rotates x [B, T, H, D] in place with HF's half-rotation layout (rotate_half): for i < D/2,
	// with c = cos[pos[b,t], i], s = sin[pos[b,t], i]:
	//   x'[i] = x[i]·c − x[i+D/2]·s,  x'[i+D/2] = x[i+D/2]·c + x[i]·s.
	// pos is I32 [B, T]; cos and sin are F32 tables [P, D/2] with every pos < P (computed by the
	// model code, llama3 scaling included). The backward of Rope is Rope with the table −sin.
	Rope(x, pos, cos, sin *Tensor) error
	// Attention is grouped-query scaled-dot-product attention with a causal mask, a left-padding
	// mask and an optional sliding window. q is [B, T, Hq, D]; k and v are [B, S, Hkv, D] (a KV cache
	// or just this step's keys), Hq a multiple of Hkv (query head h reads kv head h/(Hq/Hkv)); out is
	// [B, T, Hq, D]. See AttentionParams for which key slots a query sees.
	Attention(out, q, k, v *Tensor, p AttentionParams) error
	// SwiGLU sets out = silu(gate) ⊙ up, silu(x) = x·sigmoid(x). In place allowed (out = gate or up).
	SwiGLU(out, gate, up *Tensor) error
	// Embedding gathers rows: out[i, :] = table[ids[i], :], ids I32 of any shape (N elements), table
	// [V, D], out [N, D] (or any shape with N·D elements and Cols = D). An id outside [0, V) is an error.
	Embedding(out, table, ids *Tensor) error
	// Softmax normalizes each row of x (as a matrix) into out. In place allowed.
	Softmax(out, x *Tensor) error
	// CrossEntropy sets loss[i] = logsumexp(logits[i,:]) − logits[i, labels[i]] for logits [N, V] F32,
	// labels I32 [N], loss F32 [N]; a label of −100 (HF's ignore index) gives loss 0. Other labels
	// outside [0, V) are an error.
	CrossEntropy(loss, logits, labels *Tensor) error
	// ArgMax writes into out (I32, Rows elements) the index of the largest value of each row of x
	// (the first one on ties), for greedy decoding without copying logits to the host.
	ArgMax(out, x *Tensor) error
	// Slice copies src[.., start:start+dst.Dim(axis), ..] (along axis) into dst; dst and src have the
	// same rank and dims except along axis. Same dtype.
	Slice(dst, src *Tensor, axis, start int) error
	// SetSlice is the reverse: dst[.., start:start+src.Dim(axis), ..] = src. Used to append to a KV
	// cache. Same dtype.
	SetSlice(dst, src *Tensor, axis, start int) error
}

// AttentionParams selects the key slots each query row sees in Ops.Attention. With query row t of
// sequence b at slot qs = QStart + t, key slot j is visible when
//
//	KeyStart[b] ≤ j  and  j ≤ qs  and  j < KVLen  and  (Window == 0 or qs − j < Window).
//
// A query row with no visible key (a padding row) gets an output of zeros.
type AttentionParams struct {
	Scale    float32 // multiplies q·k; usually 1/sqrt(D)
	QStart   int     // slot of query row 0 in k/v: the cache length before this step (0 without a cache)
	KVLen    int     // slots of k/v in use (≤ S); 0 means QStart + T
	KeyStart []int   // per sequence (len B), the first non-padding slot (left padding); nil means all 0
	Window   int     // sliding-window size in slots (Mistral); 0 means unlimited
	// LSE, when non-nil, receives F32 [B, Hq, T]: the natural log of the softmax denominator of each
	// query row (scaled scores, max included), which a backward pass can use instead of recomputing
	// it. -Inf for rows with no visible key.
	LSE *Tensor
}
