package cuda

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// Registering as "cuda" makes tensor.Get("cuda"), tensor.Get("cuda:N") and tensor.Default() (which
// prefers "cuda" when a GPU opens, see FINLORA_DEVICE) find this backend.
func init() {
	tensor.Register("cuda", func(name string) (tensor.Backend, error) {
		idx := 0
		if _, n, ok := strings.Cut(name, ":"); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 {
				return nil, fmt.Errorf("cuda: bad device name %q (want cuda or cuda:N)", name)
			}
			idx = i
		}
		b, err := Open(idx)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}

// Backend runs tensor ops on one GPU. It implements tensor.Backend and tensor.Backward.
//
// Storage: every tensor's data is a *Block of the device's caching allocator; views share their
// base's block. Activations are F32 (as on the CPU); weights F32, F16 or BF16. Ops are queued on
// the device's stream and return before the GPU has finished; transfers to the host (ToHost,
// ToFloat32, ToInt32, SumSquares) and ops that validate indices on the device (Embedding, Rope,
// CrossEntropy) wait for it, so an asynchronous kernel failure surfaces there.
//
// Gemm precision follows the weight operand's dtype: with a BF16 (F16) b, a is rounded to BF16
// (F16) and the product runs on the tensor cores with float32 accumulation, as PEFT's bf16 training
// does; with an F32 b the product is full float32 (no TF32; GemmLowRank, for adapter products, may
// use TF32: see LowRankTF32). Everything else is float32 math.
//
// Methods are safe for concurrent use (they are serialized by a mutex).
type Backend struct {
	dev  *Device
	name string
	k    *kernels
	blas *blas

	mu      sync.Mutex
	purpose Purpose // purpose of the next allocations (SetPurpose)
	stats   tensor.MemStats
	flag    *Block // one int32 on the device: set by kernels that find a bad index
	ws      *Block // cuBLASLt workspace
	// gtMaxBlocks, when positive, caps gemv4t's grid (tests: many tiles a block, so that a warp's
	// range crosses tiles).
	gtMaxBlocks int

	// SimpleAttention selects the simple one-block-per-query-row attention kernels even where the
	// tiled ones apply (set from FINLORA_ATTN=simple at Open; for tests and comparisons).
	SimpleAttention bool
	// F32Attention selects the float32 tiled kernels (attention_tiled.cu) instead of the bf16
	// tensor-core ones (attention_mma.cu) for head dims 64 and 128 (set from FINLORA_ATTN=f32 at
	// Open; the reference for the mma kernels' tests, and for comparisons).
	F32Attention bool
	// NoQuantGEMV makes QuantMatMul always dequantize then GEMM, never the decode GEMVs of
	// kernels/quant.cu (set from FINLORA_QUANT_GEMV=0 at Open; for tests and comparisons).
	NoQuantGEMV bool
	// GEMV4 names the 4-bit decode kernel of kernels/quant.cu (FINLORA_QUANT_GEMV at Open): "" (the
	// default: gemv4t at m = 1 where it applies — with the fused gemv4t3 and gemv4t_swiglu decode
	// ops — else gemv4s; gemv4h at 2 ≤ m ≤ 4), "gemv4t" (the same), "gemv4s" (gemv4s at m = 1, no
	// fused ops), "gemv4s_r2" / "gemv4s_r4" / "gemv4s_r8" (gemv4s with 2 / 4 / 8 rows a block; =s2,
	// =s4, =s8), "gemv4h" (one warp per 4 rows sharing x, half the lookups by byte permutes; =hybrid)
	// or "gemv4" (one warp per row, weights rounded to the checkpoint dtype exactly as the
	// dequantization does; =exact). Every name but "" and "gemv4t" turns the fused decode ops off.
	GEMV4 string
	// OldDequant selects dequant4_bf16 (16 elements a thread, rounding twice) over dequant4_bf16v
	// for 4-bit weights into bf16 (FINLORA_DEQUANT=old at Open; for tests and comparisons).
	OldDequant bool
	// PoisonUninit fills AllocUninit's tensors with NaN bytes (FINLORA_POISON_UNINIT=1 at Open):
	// a check that no caller reads them before writing them.
	PoisonUninit bool
	// NoConvCache turns off the reuse of Gemm's operand conversions (conv.go; FINLORA_CONV_CACHE=0
	// at Open), for comparisons.
	NoConvCache bool
	// HoldDequant lets HoldDequantized keep dequantized weight copies (on by default;
	// FINLORA_HOLD_DEQUANT=0 at Open turns it off; quantized.go). dqHold is the current hold,
	// dqHeld the copies.
	HoldDequant bool
	// LowRankTF32 makes GemmLowRank run float32 products on the TF32 tensor cores (on by default;
	// FINLORA_LORA_TF32=0 at Open keeps them exact float32). tf32 is set while one runs.
	LowRankTF32 bool
	tf32        bool
	// ScalarConvert keeps the one-element-a-thread convert kernel for float32 → bf16 (Gemm's operand
	// conversion, Copy) instead of convert_bf16v (FINLORA_CONVERT=scalar at Open; for comparisons).
	ScalarConvert bool
	// FuseConvert lets SwiGLU and SwiGLUBackward write bf16 copies of their outputs for the next
	// bf16 Gemm (conv.go; on by default, FINLORA_FUSE_CONVERT=0 at Open turns it off).
	FuseConvert bool
	// VecElementwise selects add_v, swiglu_bv and swiglu_bwd_bv (4 elements a thread, float4
	// accesses; the same arithmetic) where every pointer is 16-byte aligned (FINLORA_VEC_ELEMWISE=1
	// at Open; off by default until measured on a GPU).
	VecElementwise bool
	dqHold         bool
	dqHeld         []heldDequant

	ks   keyStartCache // Attention's key starts on the device (attention.go)
	prof *profiler     // non-nil while StartProfile runs
}

const gemmWorkspace = 32 << 20

var (
	openMu   sync.Mutex
	backends = map[int]*Backend{}
)

// Open returns the backend of GPU index (one per device per process; later calls return it).
// Errors wrap ErrNoCUDA when CUDA or the GPU is missing.
func Open(index int) (*Backend, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if b, ok := backends[index]; ok {
		return b, nil
	}
	d, err := OpenDevice(index)
	if err != nil {
		return nil, err
	}
	if _, err := loadNVRTC(); err != nil {
		return nil, err
	}
	bl, err := newBlas(d)
	if err != nil {
		return nil, err
	}
	b := &Backend{dev: d, name: fmt.Sprintf("cuda:%d", index), k: &kernels{d: d, modules: map[string]*module{}}, blas: bl}
	if b.flag, err = d.Alloc.Get(4, Workspace); err != nil {
		return nil, err
	}
	if b.ws, err = d.Alloc.Get(gemmWorkspace, Workspace); err != nil {
		return nil, err
	}
	b.SimpleAttention = os.Getenv("FINLORA_ATTN") == "simple"
	b.F32Attention = os.Getenv("FINLORA_ATTN") == "f32"
	b.NoQuantGEMV = os.Getenv("FINLORA_QUANT_GEMV") == "0"
	b.GEMV4 = map[string]string{"s2": "gemv4s_r2", "s4": "gemv4s_r4", "s8": "gemv4s_r8", "exact": "gemv4", "hybrid": "gemv4h"}[os.Getenv("FINLORA_QUANT_GEMV")]
	b.OldDequant = os.Getenv("FINLORA_DEQUANT") == "old"
	b.PoisonUninit = os.Getenv("FINLORA_POISON_UNINIT") == "1"
	b.NoConvCache = os.Getenv("FINLORA_CONV_CACHE") == "0"
	b.HoldDequant = os.Getenv("FINLORA_HOLD_DEQUANT") != "0"
	b.LowRankTF32 = os.Getenv("FINLORA_LORA_TF32") != "0"
	b.ScalarConvert = os.Getenv("FINLORA_CONVERT") == "scalar"
	b.FuseConvert = os.Getenv("FINLORA_FUSE_CONVERT") != "0"
	b.VecElementwise = os.Getenv("FINLORA_VEC_ELEMWISE") == "1"
	_, ex := d.drv.syms["cuLaunchKernelEx"]
	b.k.pdl = ex && d.Info.Major >= 9 && os.Getenv("FINLORA_PDL") != "0"
	b.k.wrap = b.profiled
	backends[index] = b
	return b, nil
}

var (
	_ tensor.Backend  = (*Backend)(nil)
	_ tensor.Backward = (*Backend)(nil)
)

// Name returns "cuda:N".
func (b *Backend) Name() string { return b.name }

// Device returns the GPU the backend runs on.
func (b *Backend) Device() *Device { return b.dev }

// Capabilities reports the GPU, F32/F16/BF16 weights, F32 activations and the backward extension.
func (b *Backend) Capabilities() tensor.Capabilities {
	i := b.dev.Info
	return tensor.Capabilities{
		Device:           fmt.Sprintf("%s (sm_%d%d, %d SMs)", i.Name, i.Major, i.Minor, i.SMs),
		WeightDTypes:     []tensor.DType{tensor.F32, tensor.F16, tensor.BF16},
		ActivationDTypes: []tensor.DType{tensor.F32},
		Parallelism:      i.SMs,
		TotalMemory:      i.TotalMemory,
		Extensions:       []string{"backward"},
	}
}

// SetPurpose labels the allocations that follow (for AllocStats) until the returned function
// restores the previous label. Default: Activations for Alloc; tensors made from host data
// (FromHost, FromFloat32, FromInt32) count as Weights unless a purpose was set.
func (b *Backend) SetPurpose(p Purpose) (restore func()) {
	b.mu.Lock()
	old := b.purpose
	b.purpose = p
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.purpose = old
		b.mu.Unlock()
	}
}

// AllocStats returns the device allocator's statistics (bytes by purpose, reserved, cached).
func (b *Backend) AllocStats() AllocStats { return b.dev.Alloc.Stats() }

// Sync waits for all queued work; an asynchronous kernel error surfaces here.
func (b *Backend) Sync() error { return b.dev.Sync() }

// lock serializes the backend and makes the context current on this thread.
func (b *Backend) lock() func() {
	b.mu.Lock()
	leave := b.dev.enter()
	return func() {
		leave()
		b.mu.Unlock()
	}
}

// dtypeCode is the kernels' code for a float dtype (common.cuh DT_*).
func dtypeCode(d tensor.DType) int {
	switch d {
	case tensor.F16:
		return 1
	case tensor.BF16:
		return 2
	}
	return 0
}

// check verifies that t is live, belongs to b and has dtype want (Invalid: any), and returns its
// device address.
func (b *Backend) check(op, arg string, t *tensor.Tensor, want tensor.DType) (uintptr, error) {
	if t == nil {
		return 0, fmt.Errorf("cuda: %s: %s is nil: %w", op, arg, tensor.ErrShape)
	}
	if t.Backend() != tensor.Backend(b) {
		return 0, fmt.Errorf("cuda: %s: %s %v: %w", op, arg, t, tensor.ErrBackend)
	}
	d := t.Data()
	if d == nil {
		return 0, fmt.Errorf("cuda: %s: %s %v: %w", op, arg, t, tensor.ErrFreed)
	}
	if want != tensor.Invalid && t.DType() != want {
		return 0, fmt.Errorf("cuda: %s: %s %v must be %s: %w", op, arg, t, want, tensor.ErrDType)
	}
	return d.(*Block).Ptr, nil
}

// f32 checks an F32 operand.
func (b *Backend) f32(op, arg string, t *tensor.Tensor) (uintptr, error) {
	return b.check(op, arg, t, tensor.F32)
}

// weight checks a float operand of any float dtype.
func (b *Backend) weight(op, arg string, t *tensor.Tensor) (uintptr, error) {
	p, err := b.check(op, arg, t, tensor.Invalid)
	if err != nil {
		return 0, err
	}
	if !t.DType().IsFloat() {
		return 0, fmt.Errorf("cuda: %s: %s %v must be F32, F16 or BF16: %w", op, arg, t, tensor.ErrDType)
	}
	return p, nil
}

// grid1 is the launch size of an elementwise kernel over n elements.
func grid1(n int) (dim3, dim3) {
	const threads = 256
	blocks := (n + threads - 1) / threads
	if blocks > 65535*8 {
		blocks = 65535 * 8
	}
	return dim3{x: max(blocks, 1)}, dim3{x: threads}
}

// launch1 launches an elementwise kernel over n elements (nothing for n = 0).
func (b *Backend) launch1(name string, n int, args ...any) error {
	return b.launch1With(b.k.launch, name, n, args...)
}

// launch1Dependent is launch1 as a dependent launch (kernels.launchDependent).
func (b *Backend) launch1Dependent(name string, n int, args ...any) error {
	return b.launch1With(b.k.launchDependent, name, n, args...)
}

func (b *Backend) launch1With(launch func(string, dim3, dim3, int, ...any) error, name string, n int, args ...any) error {
	if n == 0 {
		b.dev.nextWrites = nil // nothing launched: a declared write range must not leak to the next launch
		return nil
	}
	g, t := grid1(n)
	return launch(name, g, t, 0, args...)
}

// clearFlag zeroes the bad-index flag before a validating kernel; readFlag waits for the stream
// and reports whether a kernel set it.
func (b *Backend) clearFlag() error {
	return b.dev.memset0(b.flag.Ptr, 4)
}

func (b *Backend) readFlag() (bool, error) {
	var v int32
	if err := b.dev.dtoh(unsafe.Pointer(&v), b.flag.Ptr, 4); err != nil {
		return false, err
	}
	return v != 0, nil
}

// IsNoCUDA reports whether err means CUDA is unavailable here (no library, driver or GPU).
func IsNoCUDA(err error) bool { return errors.Is(err, ErrNoCUDA) }
