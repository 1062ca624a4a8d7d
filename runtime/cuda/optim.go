package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// optChunk is OPT_CHUNK of kernels/optim.cu: elements per block of a multi-tensor launch.
const optChunk = 4096

// optEntry mirrors struct opt_entry of kernels/optim.cu (48 bytes).
type optEntry struct {
	p, g, m, v uintptr
	n, block0  int64
}

// optTable uploads the table of a multi-tensor launch to a workspace block (the caller Puts it)
// and returns it with the number of blocks to launch. Each list is nil or as long as grads; every
// tensor is F32 and params[i], m[i], v[i] have grads[i]'s element count.
func (b *Backend) optTable(op string, params, grads, m, v []*tensor.Tensor) (*Block, int, error) {
	tab := make([]optEntry, len(grads))
	blocks := int64(0)
	for i, g := range grads {
		e := &tab[i]
		var err error
		if e.g, err = b.f32(op, fmt.Sprintf("grad %d", i), g); err != nil {
			return nil, 0, err
		}
		for _, x := range []struct {
			list []*tensor.Tensor
			name string
			dst  *uintptr
		}{{params, "param", &e.p}, {m, "exp_avg", &e.m}, {v, "exp_avg_sq", &e.v}} {
			if x.list == nil {
				continue
			}
			if len(x.list) != len(grads) {
				return nil, 0, fmt.Errorf("cuda: %s: %d %s tensors for %d gradients: %w", op, len(x.list), x.name, len(grads), tensor.ErrShape)
			}
			if *x.dst, err = b.f32(op, fmt.Sprintf("%s %d", x.name, i), x.list[i]); err != nil {
				return nil, 0, err
			}
			if x.list[i].Numel() != g.Numel() {
				return nil, 0, fmt.Errorf("cuda: %s: %s %d is %v, gradient %v: %w", op, x.name, i, x.list[i], g, tensor.ErrShape)
			}
		}
		e.n, e.block0 = int64(g.Numel()), blocks
		blocks += (e.n + optChunk - 1) / optChunk // an empty tensor owns no block (the kernel's search skips it)
	}
	if blocks == 0 {
		return nil, 0, nil
	}
	if blocks > math.MaxInt32 {
		return nil, 0, fmt.Errorf("cuda: %s: %d blocks: %w", op, blocks, tensor.ErrShape)
	}
	size := int(unsafe.Sizeof(optEntry{})) * len(tab)
	blk, err := b.dev.Alloc.Get(int64(size), Workspace)
	if err != nil {
		return nil, 0, fmt.Errorf("cuda: %s: %w", op, err)
	}
	if err := b.dev.htod(blk.Ptr, unsafe.Pointer(&tab[0]), size); err != nil {
		b.dev.Alloc.Put(blk)
		return nil, 0, err
	}
	return blk, int(blocks), nil
}

// SumSquaresAll returns Σ x² over every element of the F32 tensors ts (the squared global L2 norm
// of a gradient list), one launch and one host read; float64 partials per block, summed here.
func (b *Backend) SumSquaresAll(ts []*tensor.Tensor) (float64, error) {
	defer b.lock()()
	if len(ts) == 0 {
		return 0, nil
	}
	tab, blocks, err := b.optTable("sum squares all", nil, ts, nil, nil)
	if err != nil || blocks == 0 {
		return 0, err
	}
	defer b.dev.Alloc.Put(tab)
	part, err := b.dev.Alloc.Get(int64(8*blocks), Workspace)
	if err != nil {
		return 0, err
	}
	defer b.dev.Alloc.Put(part)
	if err := b.k.launch("multi_sumsq", dim3{x: blocks}, dim3{x: 256}, 0, part.Ptr, tab.Ptr, len(ts)); err != nil {
		return 0, err
	}
	host := make([]float64, blocks)
	if err := b.dev.dtoh(unsafe.Pointer(&host[0]), part.Ptr, 8*blocks); err != nil {
		return 0, err
	}
	var s float64
	for _, v := range host {
		s += v
	}
	return s, nil
}

// AdamWUpdate applies one AdamW step in place to every (params[i], grads[i], m[i], v[i]) (F32,
// equal element counts) in one launch, as torch.optim.AdamW's single-tensor path in float32:
//
//	g ← g·clip if clip < 1;  p ← p·decay if weight decay is on (decay ≠ 1);
//	m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²;  p ← p − stepSize·m/(sqrt(v)/bc2Sqrt + eps)
//
// and then zeroes every gradient (ready to accumulate the next step). stepSize = lr/(1−β1ᵗ),
// bc2Sqrt = sqrt(1−β2ᵗ), decay = 1 − lr·wd, as train.AdamW.Update computes them. Queued on the
// stream: nothing is read back.
func (b *Backend) AdamWUpdate(params, grads, m, v []*tensor.Tensor, clip, stepSize, bc2Sqrt, beta1, beta2, eps, decay float32) error {
	defer b.lock()()
	if len(grads) == 0 {
		return nil
	}
	if params == nil || m == nil || v == nil {
		return fmt.Errorf("cuda: adamw: params, exp_avg and exp_avg_sq lists are required: %w", tensor.ErrShape)
	}
	tab, blocks, err := b.optTable("adamw", params, grads, m, v)
	if err != nil || blocks == 0 {
		return err
	}
	defer b.dev.Alloc.Put(tab)
	wd := 0
	if decay != 1 {
		wd = 1
	}
	return b.k.launch("multi_adamw", dim3{x: blocks}, dim3{x: 256}, 0, tab.Ptr, len(grads), clip, stepSize, bc2Sqrt, beta1, beta2, eps, decay, wd)
}

// ReadAll copies the F32 tensors ts to the host slices dst (dst[i] has ts[i].Numel() values)
// with one synchronization: device-to-device copies into one staging block, then one read.
func (b *Backend) ReadAll(ts []*tensor.Tensor, dst [][]float32) error {
	defer b.lock()()
	if len(ts) != len(dst) {
		return fmt.Errorf("cuda: read all: %d tensors, %d destinations: %w", len(ts), len(dst), tensor.ErrShape)
	}
	total := 0
	ptrs := make([]uintptr, len(ts))
	for i, t := range ts {
		var err error
		if ptrs[i], err = b.f32("read all", fmt.Sprintf("tensor %d", i), t); err != nil {
			return err
		}
		if len(dst[i]) != t.Numel() {
			return fmt.Errorf("cuda: read all: tensor %d is %v, destination has %d values: %w", i, t, len(dst[i]), tensor.ErrShape)
		}
		total += t.Numel()
	}
	if total == 0 {
		return nil
	}
	stage, err := b.dev.Alloc.Get(int64(4*total), Workspace)
	if err != nil {
		return fmt.Errorf("cuda: read all: %w", err)
	}
	defer b.dev.Alloc.Put(stage)
	off := 0
	for i, t := range ts {
		if err := b.dev.dtod(stage.Ptr+uintptr(4*off), ptrs[i], 4*t.Numel()); err != nil {
			return err
		}
		off += t.Numel()
	}
	host := make([]float32, total)
	if err := b.dev.dtoh(unsafe.Pointer(&host[0]), stage.Ptr, 4*total); err != nil {
		return err
	}
	off = 0
	for i := range ts {
		off += copy(dst[i], host[off:off+len(dst[i])])
	}
	return nil
}
