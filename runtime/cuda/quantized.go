package cuda

import (
	"fmt"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// This file implements tensor.Quantized: NF4/FP4 and LLM.int8 weights kept on the device in
// bitsandbytes' layouts (device memory ≈ the quantized size). QuantMatMul dequantizes the whole
// weight into a workspace matrix of the QuantHost's rounding dtype (kernels/quant.cu, the exact
// QuantHost formula) and runs Gemm on it, so it has Gemm's precision for that dtype: BF16/F16
// rounding → tensor cores with the F32 operand rounded to BF16/F16; F32 → a float32 product.
//
// Verified on an H100 (2026-11-27): tensortest.RunQuantized (exact dequantization, QuantMatMul
// within 1e-2 of a float64 product) and TestQuantizedMatchesCPU pass.

var _ tensor.Quantized = (*Backend)(nil)

// qdev is the device storage of a QTensor.
type qdev struct {
	h                                                      tensor.QuantHost // shape, format, block sizes, offset; slices nil (they live in blocks)
	blocks                                                 []*Block
	packed, absmax, codes, nabs, nmap, codebook, int8, scb uintptr
}

// QuantFromHost uploads h's packed codes and scales as they are. The caller owns the result.
func (b *Backend) QuantFromHost(h *tensor.QuantHost) (*tensor.QTensor, error) {
	if h == nil {
		return nil, fmt.Errorf("cuda: quant from host: nil: %w", tensor.ErrShape)
	}
	if err := h.Check(); err != nil {
		return nil, fmt.Errorf("cuda: quant from host: %w", err)
	}
	defer b.lock()()
	q := &qdev{h: *h}
	q.h.Packed, q.h.Absmax, q.h.AbsmaxCodes, q.h.NestedAbsmax, q.h.NestedMap, q.h.Int8, q.h.SCB = nil, nil, nil, nil, nil, nil, nil
	if q.h.Round == tensor.Invalid {
		q.h.Round = tensor.F32
	}
	p := b.hostPurpose()
	var total int64
	up := func(ptr unsafe.Pointer, n int) (uintptr, error) {
		if n == 0 || ptr == nil {
			return 0, nil
		}
		blk, err := b.dev.Alloc.Get(int64(n), p)
		if err != nil {
			return 0, err
		}
		q.blocks = append(q.blocks, blk)
		total += int64(n)
		return blk.Ptr, b.dev.htod(blk.Ptr, ptr, n)
	}
	f32 := func(v []float32) (uintptr, error) {
		if len(v) == 0 {
			return 0, nil
		}
		return up(unsafe.Pointer(&v[0]), 4*len(v))
	}
	u8 := func(v []byte) (uintptr, error) {
		if len(v) == 0 {
			return 0, nil
		}
		return up(unsafe.Pointer(&v[0]), len(v))
	}
	var err error
	fail := func(e error) (*tensor.QTensor, error) {
		for _, blk := range q.blocks {
			b.dev.Alloc.Put(blk)
		}
		return nil, fmt.Errorf("cuda: quant from host %s [%d %d]: %w", h.Format, h.Rows, h.Cols, e)
	}
	if h.Format.Is4Bit() {
		cb := h.Codebook
		if q.packed, err = u8(h.Packed); err != nil {
			return fail(err)
		}
		if q.absmax, err = f32(h.Absmax); err != nil {
			return fail(err)
		}
		if q.codes, err = u8(h.AbsmaxCodes); err != nil {
			return fail(err)
		}
		if q.nabs, err = f32(h.NestedAbsmax); err != nil {
			return fail(err)
		}
		if q.nmap, err = f32(h.NestedMap); err != nil {
			return fail(err)
		}
		if q.codebook, err = f32(cb[:]); err != nil {
			return fail(err)
		}
	} else {
		i8 := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(h.Int8))), len(h.Int8))
		if q.int8, err = u8(i8); err != nil {
			return fail(err)
		}
		if q.scb, err = f32(h.SCB); err != nil {
			return fail(err)
		}
	}
	b.stats.Current += total
	b.stats.Tensors++
	b.stats.Peak = max(b.stats.Peak, b.stats.Current)
	return tensor.NewQTensor(b, h.Format, h.Rows, h.Cols, total, q), nil
}

// QuantFree releases w's storage.
func (b *Backend) QuantFree(w *tensor.QTensor) error {
	q, err := b.qcheck("quant free", w)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.dqHeld[:0]
	for _, e := range b.dqHeld { // its held dequantized copy goes too
		if e.q == q {
			b.dev.Alloc.Put(e.blk)
		} else {
			kept = append(kept, e)
		}
	}
	b.dqHeld = kept
	for _, blk := range q.blocks {
		b.dev.Alloc.Put(blk)
	}
	q.blocks = nil
	b.stats.Current -= w.Bytes()
	b.stats.Tensors--
	return nil
}

func (b *Backend) qcheck(op string, w *tensor.QTensor) (*qdev, error) {
	if w == nil {
		return nil, fmt.Errorf("cuda: %s: weight is nil: %w", op, tensor.ErrShape)
	}
	if w.Backend() != tensor.Backend(b) {
		return nil, fmt.Errorf("cuda: %s: weight %v: %w", op, w, tensor.ErrBackend)
	}
	q, ok := w.Data().(*qdev)
	if !ok || q.blocks == nil {
		return nil, fmt.Errorf("cuda: %s: weight %v: %w", op, w, tensor.ErrFreed)
	}
	return q, nil
}

// dequant queues the dequantization of q into dst (rows·cols elements of dtype dt). The caller
// holds the lock.
func (b *Backend) dequant(q *qdev, dst uintptr, dt tensor.DType) error {
	h := &q.h
	n := h.Rows * h.Cols
	b.dev.nextWrites = &span{dst, int64(n * dt.Size())} // a workspace: keeps Gemm's conversion cache (conv.go)
	if dt == tensor.BF16 && n%16 == 0 && dst%16 == 0 {  // the vectorized kernels (16 elements a thread)
		bsh, nsh, pow2 := blockShifts(h)
		if h.Format.Is4Bit() && !b.OldDequant && pow2 && h.BlockSize >= 8 && q.packed%4 == 0 { // 4 groups of 8 a thread
			return b.launch1("dequant4_bf16v", (n/8+3)/4, dst, q.packed, q.absmax, q.codes, q.nabs, q.nmap, h.NestedOffset,
				nsh, q.codebook, bsh, dtypeCode(h.Round), int64(n))
		}
		if h.Format.Is4Bit() && h.BlockSize%16 == 0 && q.packed%8 == 0 {
			return b.launch1("dequant4_bf16", n/16, dst, q.packed, q.absmax, q.codes, q.nabs, q.nmap, h.NestedOffset,
				max(h.NestedBlockSize, 1), q.codebook, h.BlockSize, dtypeCode(h.Round), int64(n))
		}
		if !h.Format.Is4Bit() && h.Cols%16 == 0 && q.int8%16 == 0 {
			return b.launch1("dequant8_bf16", n/16, dst, q.int8, q.scb, dtypeCode(h.Round), int64(h.Cols), int64(n))
		}
	}
	if h.Format.Is4Bit() {
		return b.launch1("dequant4", n, dst, dtypeCode(dt), q.packed, q.absmax, q.codes, q.nabs, q.nmap, h.NestedOffset,
			max(h.NestedBlockSize, 1), q.codebook, h.BlockSize, dtypeCode(h.Round), int64(n))
	}
	return b.launch1("dequant8", n, dst, dtypeCode(dt), q.int8, q.scb, dtypeCode(h.Round), int64(h.Cols), int64(n))
}

// QuantToFloat32 returns the dequantized matrix (a new host slice).
func (b *Backend) QuantToFloat32(w *tensor.QTensor) ([]float32, error) {
	q, err := b.qcheck("quant to float32", w)
	if err != nil {
		return nil, err
	}
	defer b.lock()()
	n := q.h.Rows * q.h.Cols
	tmp, err := b.dev.Alloc.Get(int64(4*n), Workspace)
	if err != nil {
		return nil, fmt.Errorf("cuda: quant to float32 %v: %w", w, err)
	}
	defer b.dev.Alloc.Put(tmp)
	if err := b.dequant(q, tmp.Ptr, tensor.F32); err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if err := b.dev.dtoh(unsafe.Pointer(&out[0]), tmp.Ptr, 4*n); err != nil {
		return nil, fmt.Errorf("cuda: quant to float32 %v: %w", w, err)
	}
	return out, nil
}

// QuantMatMul sets out = alpha·x·op(W) + beta·out (see tensor.Quantized) by dequantizing W into a
// workspace matrix of its rounding dtype and running Gemm on it.
func (b *Backend) QuantMatMul(out, x *tensor.Tensor, w *tensor.QTensor, transW bool, alpha, beta float32) error {
	q, err := b.qcheck("quant matmul", w)
	if err != nil {
		return err
	}
	defer b.lock()()
	if ok, err := b.gemv(q, out, x, transW, alpha, beta); ok || err != nil {
		return err
	}
	dt := q.h.Round
	tmp := b.heldDequant(q, dt)
	if tmp != nil && !transW { // x·W: the backward's product, the held copy's last use
		defer b.releaseHeld(q, dt)
	}
	if tmp == nil {
		if tmp, err = b.dev.Alloc.Get(int64(q.h.Rows*q.h.Cols*dt.Size()), Workspace); err != nil {
			return fmt.Errorf("cuda: quant matmul %v: %w", w, err)
		}
		if err := b.dequant(q, tmp.Ptr, dt); err != nil {
			b.dev.Alloc.Put(tmp)
			return err
		}
		if b.dqHold && transW { // x·Wᵀ: a (recomputed) forward product, read again by the backward
			b.dqHeld = append(b.dqHeld, heldDequant{q: q, dt: dt, blk: tmp})
		} else {
			defer b.dev.Alloc.Put(tmp) // stream-ordered: the product below is queued before any reuse
		}
	}
	dense := tensor.NewTensor(b, dt, []int{q.h.Rows, q.h.Cols}, tmp)
	return b.gemmLocked(out, x, dense, false, transW, alpha, beta)
}

// releaseHeld returns the held copy of q in dtype dt to the allocator (stream-ordered: products
// already queued read it first). The caller holds the lock.
func (b *Backend) releaseHeld(q *qdev, dt tensor.DType) {
	for i, e := range b.dqHeld {
		if e.q == q && e.dt == dt {
			b.dev.Alloc.Put(e.blk)
			b.dqHeld = append(b.dqHeld[:i], b.dqHeld[i+1:]...)
			return
		}
	}
}

// gemvMaxRows is the most rows of x the decode GEMVs take (GEMV_M in kernels/quant.cu).
const gemvMaxRows = 4

// gv4Rows and gv4Threads are the output rows of one block of gemv4h (GV_THREADS/32 warps
// of GV_R rows in kernels/quant.cu) and its threads.
const gv4Rows, gv4Threads = 16, 128

// gemv4tWarps1 and gemv4tWarps2 are GT_WARPS1 and GT_WARPS2 of kernels/quant.cu: the warps of
// one gemv4t block (one block an SM) with one weight a tile (gemv4t, gemv4t3) and with two
// (gemv4t_swiglu, whose registers allow fewer).
const gemv4tWarps1, gemv4tWarps2 = 18, 12

// gemv4tShared is gemv4t's dynamic shared memory (all of its shared memory) for K columns, at
// most maxTiles tiles a block, blockWarps warps and nw weights a tile: the 64 KiB pair table with
// x's fp16 segments in its gaps, 4 KiB of nested maps and reductions (GT_XEXT of
// kernels/quant.cu), the warps' tile sums (maxTiles·blockWarps·nw·64 bytes), and x after them when
// K > 16384 (2·K bytes).
func gemv4tShared(k, maxTiles, blockWarps, nw int) int {
	n := 65536 + 4096 + maxTiles*blockWarps*nw*64
	if k/64 > 256 {
		n += 2 * k
	}
	return n
}

// gemv4tMaxShared is the most shared memory a block may have on sm_90.
const gemv4tMaxShared = 227 << 10

// gemv4tGrid is gemv4t's grid for `tiles` 16-row tiles of K columns with blocks of blockWarps
// warps and nw weights a tile: one block an SM (at most one a tile), each with ⌊tiles/blocks⌋ or
// ⌈tiles/blocks⌉ = maxTiles tiles, and more blocks where the tile sums would not fit the shared
// memory; shared is the launch's dynamic shared memory.
func (b *Backend) gemv4tGrid(tiles, k, blockWarps, nw int) (grid dim3, shared int) {
	blocks := max(1, min(max(b.dev.Info.SMs, 1), tiles))
	if b.gtMaxBlocks > 0 {
		blocks = min(blocks, b.gtMaxBlocks)
	}
	for blocks < tiles && gemv4tShared(k, (tiles+blocks-1)/blocks, blockWarps, nw) > gemv4tMaxShared {
		blocks++
	}
	return dim3{x: blocks}, gemv4tShared(k, (tiles+blocks-1)/blocks, blockWarps, nw)
}

// gemv4tName is the gemv4t kernel (base "gemv4t" or "gemv4t_swiglu") for h's absmax kind and
// block size: _dq (double-quantized) or _ab (float32 absmax), then _64 (block size 64) or _g.
func gemv4tName(base string, q *qdev) string {
	kind, bs := "_ab", "_g"
	if q.absmax == 0 {
		kind = "_dq"
	}
	if q.h.BlockSize == 64 {
		bs = "_64"
	}
	return base + kind + bs
}

// gemv4tApplies reports whether gemv4t takes the 4-bit weight q with x at device address xp:
// block sizes powers of two ≥ 64 (a 64-code segment has one absmax) dividing K (rows start on a
// block), K % 128 == 0 (units of two segments), with double quantization nested blocks of two or
// more blocks (a unit's two blocks share one), Rows·Cols < 2^31 (32-bit element indices), packed
// codes and x 16-byte aligned, and the shared memory within the 227 KiB a block may have. The
// caller has checked the format is 4-bit.
func gemv4tApplies(q *qdev, xp uintptr) bool {
	h := &q.h
	_, nsh, pow2 := blockShifts(h)
	return pow2 && h.BlockSize >= 64 && h.Cols%h.BlockSize == 0 && h.Cols%128 == 0 && (q.absmax != 0 || nsh >= 1) &&
		int64(h.Rows)*int64(h.Cols) < 1<<31 && q.packed%16 == 0 && xp%16 == 0 && gemv4tShared(h.Cols, 1, gemv4tWarps1, 2) <= gemv4tMaxShared
}

// QuantSwiGLU sets out = silu(x'·gateᵀ) ⊙ (x'·upᵀ), x' = x or RMSNorm(x) by norm, with one
// gemv4t_swiglu launch (tensor.QuantSwiGLUer)
// when it applies: one row of F32 x (decode at batch 1), gate and up 4-bit weights of the same
// shape, codebook and block size, each as gemv4t takes it, and the default 4-bit GEMV
// (Backend.GEMV4 "" or "gemv4t"). Otherwise it reports false and does nothing.
func (b *Backend) QuantSwiGLU(out, x *tensor.Tensor, gate, up *tensor.QTensor, norm *tensor.RMSNormSpec) (bool, error) {
	if !b.fusedDecode() || x.DType() != tensor.F32 || out.DType() != tensor.F32 {
		return false, nil
	}
	g, err := b.qcheck("quant swiglu", gate)
	if err != nil {
		return false, err
	}
	u, err := b.qcheck("quant swiglu", up)
	if err != nil {
		return false, err
	}
	if !g.h.Format.Is4Bit() || !sameGemv4tLayout(g, u) || g.h.Rows != u.h.Rows || x.Numel() != g.h.Cols || out.Numel() != g.h.Rows {
		return false, nil // another layout, or more than one row (or a shape error the products report)
	}
	defer b.lock()()
	xp, err := b.f32("quant swiglu", "x", x)
	if err != nil {
		return false, err
	}
	op, err := b.f32("quant swiglu", "out", out)
	if err != nil {
		return false, err
	}
	if !gemv4tApplies(g, xp) || !gemv4tApplies(u, xp) {
		return false, nil
	}
	return b.launchGemv4t("quant swiglu", "gemv4t_swiglu", 2, xp, []*qdev{g, u}, []uintptr{op, 0}, 1, 0, norm, (g.h.Rows+15)/16)
}

// fusedDecode reports whether the fused gemv4t decode ops may run: the decode GEMVs are on and the
// 4-bit kernel is the default one (Backend.GEMV4 "" or "gemv4t").
func (b *Backend) fusedDecode() bool {
	return !b.NoQuantGEMV && (b.GEMV4 == "" || b.GEMV4 == "gemv4t")
}

// sameGemv4tLayout reports whether two weights can share one gemv4t launch: the same format, Cols,
// block size, codebook and absmax kind (double-quantized or not).
func sameGemv4tLayout(a, c *qdev) bool {
	return a.h.Format == c.h.Format && a.h.Cols == c.h.Cols && a.h.BlockSize == c.h.BlockSize && a.h.Codebook == c.h.Codebook &&
		(a.absmax == 0) == (c.absmax == 0)
}

// gtArgs is q's GT_W parameter set of the gemv4t kernels (kernels/quant.cu): the output at device
// address out, the rows, the code and absmax arrays, the nested offset and block shift.
func (q *qdev) gtArgs(out uintptr) []any {
	_, nsh, _ := blockShifts(&q.h)
	return []any{out, q.h.Rows, q.packed, q.absmax, q.codes, q.nabs, q.nmap, q.h.NestedOffset, nsh}
}

// launchGemv4t launches the gemv4t kernel family base ("gemv4t", "gemv4t3" or "gemv4t_swiglu"; the
// normed form, base + "n", with norm set) on x at xp for the weights ws writing outs (one address a
// weight), taking `slots` GT_W parameter sets (those past ws are zeros: no tiles), over `tiles`
// 16-row tiles. It reports false, launching nothing, when norm's
// weight does not fit (normArgs). The weights share one layout (sameGemv4tLayout); the caller holds
// the lock. op names the operation in errors.
func (b *Backend) launchGemv4t(op, base string, slots int, xp uintptr, ws []*qdev, outs []uintptr, alpha, beta float32,
	norm *tensor.RMSNormSpec, tiles int) (bool, error) {
	q0 := ws[0]
	nargs, err := b.normArgs(op, norm, q0.h.Cols)
	if err != nil || nargs == nil {
		return false, err
	}
	if norm != nil {
		base += "n"
	}
	bsh, _, _ := blockShifts(&q0.h)
	nw, blockWarps := 1, gemv4tWarps1 // weights a tile, warps a block
	if strings.HasPrefix(base, "gemv4t_swiglu") {
		nw, blockWarps = 2, gemv4tWarps2
	}
	grid, shared := b.gemv4tGrid(tiles, q0.h.Cols, blockWarps, nw)
	args := append([]any{xp, q0.h.Cols, alpha, beta, q0.codebook, bsh}, nargs...)
	for i := 0; i < slots; i++ {
		if i < len(ws) {
			args = append(args, ws[i].gtArgs(outs[i])...)
		} else {
			args = append(args, uintptr(0), 0, uintptr(0), uintptr(0), uintptr(0), uintptr(0), uintptr(0), float32(0), 0)
		}
	}
	return true, b.k.launchDependent(gemv4tName(base, q0), grid, dim3{x: 32 * blockWarps}, shared, args...)
}

// normArgs is the RMSNorm part of a gemv4t launch's arguments (weight, its dtype code, eps,
// add-one): zeros for no norm; nil (and no error) when norm's weight does not fit the kernels
// ([cols] on this device, of a float dtype), so the caller declines. The caller holds the lock.
func (b *Backend) normArgs(op string, norm *tensor.RMSNormSpec, cols int) ([]any, error) {
	if norm == nil {
		return []any{uintptr(0), 0, float32(0), 0}, nil
	}
	if norm.W == nil || norm.W.Numel() != cols || !norm.W.DType().IsFloat() {
		return nil, nil
	}
	wp, err := b.weight(op, "norm weight", norm.W)
	if err != nil {
		return nil, err
	}
	return []any{wp, dtypeCode(norm.W.DType()), norm.Eps, boolInt(norm.AddOne)}, nil
}

// QuantMatMulSharedX sets outs[i] = x'·ws[i]ᵀ (x' = x or RMSNorm(x) by norm) for two or three 4-bit
// weights sharing one row of F32 x
// (tensor.QuantSharedXer: a decode layer's q, k and v) with one gemv4t3 launch, the weights one
// after another along its tiles, when it applies: the same Cols, block size, codebook and absmax
// kind, each weight as gemv4t takes it, and the default 4-bit GEMV. Otherwise it reports false and
// does nothing.
func (b *Backend) QuantMatMulSharedX(outs []*tensor.Tensor, x *tensor.Tensor, ws []*tensor.QTensor, norm *tensor.RMSNormSpec) (bool, error) {
	if len(ws) < 2 || len(ws) > 3 || len(outs) != len(ws) || !b.fusedDecode() || x.DType() != tensor.F32 {
		return false, nil
	}
	qs := make([]*qdev, len(ws))
	for i, w := range ws {
		q, err := b.qcheck("quant matmul shared x", w)
		if err != nil {
			return false, err
		}
		h := &q.h
		if !h.Format.Is4Bit() || outs[i].DType() != tensor.F32 || x.Numel() != h.Cols || outs[i].Numel() != h.Rows ||
			i > 0 && !sameGemv4tLayout(q, qs[0]) {
			return false, nil
		}
		qs[i] = q
	}
	defer b.lock()()
	xp, err := b.f32("quant matmul shared x", "x", x)
	if err != nil {
		return false, err
	}
	ops := make([]uintptr, len(qs))
	tiles := 0
	for i, q := range qs {
		if !gemv4tApplies(q, xp) {
			return false, nil
		}
		if ops[i], err = b.f32("quant matmul shared x", "out", outs[i]); err != nil {
			return false, err
		}
		tiles += (q.h.Rows + 15) / 16
	}
	return b.launchGemv4t("quant matmul shared x", "gemv4t3", 3, xp, qs, ops, 1, 0, norm, tiles)
}

// gs4Threads is GS_THREADS of kernels/quant.cu: the threads of one gemv4s block.
const gs4Threads = 128

// gemv4sKernel names the gemv4s variant for an [n, k] weight and returns its output rows a block:
// U = 4 chunks of each row in flight a thread when a row has more chunks than a block has
// threads (k > 32·gs4Threads), else 1; R rows a block from the name's suffix, or by n when the name
// is "" or "gemv4s": 2 up to 2048 rows, 4 up to 8192, else 8 (4 with U = 4), so that small
// matrices still spread over every SM and large ones share each x load among more rows.
func gemv4sKernel(name string, n, k int) (string, int) {
	u := 1
	if k > 32*gs4Threads {
		u = 4
	}
	r := 0
	switch name {
	case "gemv4s_r2":
		r = 2
	case "gemv4s_r4":
		r = 4
	case "gemv4s_r8":
		r = 8
	default:
		switch {
		case n <= 2048:
			r = 2
		case n <= 8192:
			r = 4
		default:
			r = 8
		}
	}
	if u == 4 && r == 8 {
		r = 4 // not compiled: the registers of 32 chunks a thread
	}
	return fmt.Sprintf("gemv4s_r%d_u%d", r, u), r
}

// blockShifts returns log2 of h's block size and nested block size (1 when not double-quantized)
// and whether both are powers of two (the kernels that index blocks by shifts need them).
func blockShifts(h *tensor.QuantHost) (bsh, nsh int, ok bool) {
	nbs := max(h.NestedBlockSize, 1)
	if h.BlockSize <= 0 || h.BlockSize&(h.BlockSize-1) != 0 || nbs&(nbs-1) != 0 {
		return 0, 0, false
	}
	return bits.TrailingZeros(uint(h.BlockSize)), bits.TrailingZeros(uint(nbs)), true
}

// gemv runs out = alpha·x·Wᵀ + beta·out with the decode kernels of kernels/quant.cu (reading the
// packed codes directly) when they apply: x·Wᵀ, at most gemvMaxRows rows of F32 x, K a multiple of
// 32 (NF4/FP4, block size ≥ 32) or 16 (int8), 16-byte aligned operands. It reports whether it ran;
// otherwise the caller takes the dequantize-then-GEMM path. FINLORA_QUANT_GEMV=0 turns it off;
// Backend.GEMV4 picks the 4-bit kernel (by default gemv4t at m = 1 where it applies, else gemv4s,
// and gemv4h at 2 ≤ m ≤ 4).
func (b *Backend) gemv(q *qdev, out, x *tensor.Tensor, transW bool, alpha, beta float32) (bool, error) {
	h := &q.h
	if !transW || b.NoQuantGEMV || x.DType() != tensor.F32 || out.DType() != tensor.F32 {
		return false, nil
	}
	m := 1
	if x.Rank() > 1 {
		m = x.Numel() / x.Dim(x.Rank()-1)
	}
	if m > gemvMaxRows || x.Dim(x.Rank()-1) != h.Cols || out.Numel() != m*h.Rows {
		return false, nil
	}
	xp, err := b.f32("quant gemv", "x", x)
	if err != nil {
		return true, err
	}
	op, err := b.f32("quant gemv", "out", out)
	if err != nil {
		return true, err
	}
	if xp%16 != 0 {
		return false, nil
	}
	grid, blk := dim3{x: (h.Rows + 7) / 8}, dim3{x: 256}
	if h.Format.Is4Bit() {
		if h.Cols%32 != 0 || h.BlockSize < 32 || q.packed%16 != 0 {
			return false, nil
		}
		name := b.GEMV4
		switch name {
		case "", "gemv4t", "gemv4s", "gemv4s_r2", "gemv4s_r4", "gemv4s_r8":
			bsh, nsh, pow2 := blockShifts(h)
			if m == 1 && pow2 && (name == "" || name == "gemv4t") && gemv4tApplies(q, xp) {
				_, err := b.launchGemv4t("quant gemv", "gemv4t", 1, xp, []*qdev{q}, []uintptr{op}, alpha, beta, nil, (h.Rows+15)/16)
				return true, err
			}
			if m == 1 && pow2 {
				kern, rows := gemv4sKernel(name, h.Rows, h.Cols)
				return true, b.k.launch(kern, dim3{x: (h.Rows + rows - 1) / rows}, dim3{x: gs4Threads}, 0, op, xp, h.Rows, h.Cols,
					alpha, beta, q.packed, q.absmax, q.codes, q.nabs, q.nmap, h.NestedOffset, nsh, q.codebook, bsh)
			}
			name = "gemv4h" // m > 1 (or block sizes that are not powers of two, below)
		case "gemv4", "gemv4h":
		default:
			return true, fmt.Errorf("cuda: quant gemv: unknown 4-bit GEMV kernel %q (want gemv4t, gemv4s, gemv4s_r2, gemv4s_r4, gemv4s_r8, gemv4h or gemv4)", name)
		}
		if bsh, nsh, pow2 := blockShifts(h); name == "gemv4h" && pow2 {
			if m == 1 {
				name += "_m1" // compiled for one row of x (fewer registers)
			}
			return true, b.k.launch(name, dim3{x: (h.Rows + gv4Rows - 1) / gv4Rows}, dim3{x: gv4Threads}, 0, op, xp, m, h.Rows, h.Cols,
				alpha, beta, q.packed, q.absmax, q.codes, q.nabs, q.nmap, h.NestedOffset, nsh, q.codebook, bsh)
		}
		name = "gemv4" // exact weights, or block sizes that are not powers of two
		return true, b.k.launch(name, grid, blk, 0, op, xp, m, h.Rows, h.Cols, alpha, beta, q.packed, q.absmax, q.codes,
			q.nabs, q.nmap, h.NestedOffset, max(h.NestedBlockSize, 1), q.codebook, h.BlockSize, dtypeCode(h.Round))
	}
	if h.Cols%16 != 0 || q.int8%16 != 0 {
		return false, nil
	}
	return true, b.k.launch("gemv8", grid, blk, 0, op, xp, m, h.Rows, h.Cols, alpha, beta, q.int8, q.scb, dtypeCode(h.Round))
}

// heldDequant is a dense copy of a quantized weight kept while HoldDequantized is on.
type heldDequant struct {
	q   *qdev
	dt  tensor.DType
	blk *Block
}

// HoldDequantized (train's dequantHolder) keeps, while on, the dense copy QuantMatMul
// dequantizes each weight into for a forward product (x·Wᵀ), so later products with the same
// weight skip the dequantization (quantized weights are frozen: the copies never go stale). A
// backward product (x·W, the input gradient: with gradient checkpointing the weight's last use in
// the layer) releases the copy it used and holds none it makes; turning the hold off releases the
// rest. It
// takes effect only with HoldDequant set (the default; FINLORA_HOLD_DEQUANT=0 at Open clears it).
// With gradient checkpointing one layer's copies are held (Llama-3.1-8B: ≤ 0.41 GiB in bf16).
func (b *Backend) HoldDequantized(on bool) {
	defer b.lock()()
	b.dqHold = on && b.HoldDequant
	if !b.dqHold {
		for _, e := range b.dqHeld {
			b.dev.Alloc.Put(e.blk)
		}
		b.dqHeld = nil
	}
}

// heldDequant returns the held copy of q in dtype dt, or nil. The caller holds the lock.
func (b *Backend) heldDequant(q *qdev, dt tensor.DType) *Block {
	for _, e := range b.dqHeld {
		if e.q == q && e.dt == dt {
			return e.blk
		}
	}
	return nil
}
