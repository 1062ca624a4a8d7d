package quant

// cudaSMs is the multiprocessor count of the GPU whose reduction order cudaMean reproduces (an
// H100 SXM, where the fixtures were made); it matters only for vectors long enough to be split
// across thread blocks (more than 512*256 elements: 4-bit weights above 8.4M elements... see
// cudaReducePlan).
const cudaSMs = 132

// cudaMean returns torch.mean of a contiguous float32 vector as PyTorch computes it on the GPU
// (ATen's Reduce.cuh with MeanOps): partial float32 sums in the order of its reduction kernel,
// then the sum times float32(1/len). The order matters because float32 addition is not
// associative; bitsandbytes takes the mean of the 4-bit absmax as the double-quantization offset,
// and it must match to the last bit for the stored offset and nested absmax to match.
//
// The plan: vectors longer than 128 are read as float4 vectors; one block of up to 512 threads
// (a power of two), each thread summing its strided share in 4 (or vt0 = 4) accumulators that are
// added left to right; then a tree over the threads (halving through shared memory down to 32,
// then warp shuffles at offsets 16, 8, 4, 2, 1); long vectors are split over several blocks
// whose partial sums are added by the last block in the same way.
func cudaMean(x []float32) float32 {
	n := len(x)
	if n == 0 {
		return float32nan()
	}
	p := cudaReducePlan(n)
	partials := make([]float32, p.ctas)
	lane := make([]float32, p.threads)
	for c := 0; c < p.ctas; c++ {
		for t := 0; t < p.threads; t++ {
			lane[t] = p.threadSum(x, t+c*p.threads)
		}
		partials[c] = treeSum(lane)
	}
	sum := partials[0]
	if p.ctas > 1 { // the last block adds the partials: thread t takes t, t+threads, ... then the tree
		for t := range lane {
			var v float32
			for i := t; i < p.ctas; i += p.threads {
				v += partials[i]
			}
			lane[t] = v
		}
		sum = treeSum(lane)
	}
	factor := float32(1) / float32(n)
	return sum * factor
}

// reducePlan is the launch configuration PyTorch's setReduceConfig picks for a full reduction of n
// contiguous float32 values to one output.
type reducePlan struct {
	n          int
	vectorized bool // float4 loads
	threads    int  // block width (block height is 1 for a single output)
	ctas       int  // thread blocks sharing the output
}

func cudaReducePlan(n int) reducePlan {
	p := reducePlan{n: n, vectorized: n > 128, ctas: 1}
	dim0 := n
	if p.vectorized {
		dim0 /= 4
	}
	const maxThreads = 512
	p.threads = maxThreads
	if dim0 < maxThreads {
		p.threads = lastPow2(dim0)
	}
	valuesPerThread := ceilDiv(n, p.threads)
	if valuesPerThread >= 16 || valuesPerThread >= 256 { // the input is split over warps (block height 1)
		if valuesPerThread >= 256 {
			target := cudaSMs * (2048 / p.threads)
			ctas := max(min(target, ceilDiv(valuesPerThread, 16)), ceilDiv(valuesPerThread, 256))
			if ctas > 1 {
				p.ctas = ctas
			}
		}
	}
	return p
}

func lastPow2(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// threadSum is one thread's share (global thread index g over all blocks), reduced as in
// Reduce.cuh's thread_reduce: float4 loads with four accumulators, or scalar loads in groups of
// vt0 = 4 strided values with four accumulators, then the accumulators added in order.
func (p reducePlan) threadSum(x []float32, g int) float32 {
	stride := p.threads * p.ctas
	var acc [4]float32
	if p.vectorized {
		idx := g
		for idx*4+3 < p.n {
			for i := 0; i < 4; i++ {
				acc[i] += x[idx*4+i]
			}
			idx += stride
		}
		// the tail (n mod 4 values) goes to threads 0..3 of the first block
		tail := p.n - p.n%4
		if g < p.threads && tail+g < p.n && g < 4 {
			acc[0] += x[tail+g]
		}
	} else {
		idx := g
		for idx+3*stride < p.n {
			for i := 0; i < 4; i++ {
				acc[i] += x[idx+i*stride]
			}
			idx += 4 * stride
		}
		for i := 0; i < 4 && idx < p.n; i++ {
			acc[i] += x[idx]
			idx += stride
		}
	}
	return ((acc[0] + acc[1]) + acc[2]) + acc[3]
}

// treeSum adds the per-thread values as block_x_reduce does: the upper half is added onto the
// lower half (through shared memory while more than 32 remain, then by warp shuffles at offsets
// 16, 8, 4, 2, 1), leaving the total in thread 0. len(v) is a power of two; v is overwritten.
// (The fixtures decide the order: of the candidate orders only this one reproduces all 14
// offsets bitsandbytes stored for vectors of 32, 64 and 160 values.)
func treeSum(v []float32) float32 {
	for w := len(v); w > 1; w /= 2 {
		for t := 0; t < w/2; t++ {
			v[t] += v[t+w/2]
		}
	}
	return v[0]
}
