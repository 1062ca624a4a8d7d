package cpu

import (
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/tensortest"
)

// The CPU backend passes the tensor.Quantized conformance suite bit-exactly (tol 0: QuantMatMul
// equals Gemm on the dequantized weight), with the AVX2 kernels and with the pure-Go ones, on one
// worker and on three.
func TestQuantizedConformance(t *testing.T) {
	for _, workers := range []int{1, 3} {
		tensortest.RunQuantized(t, New(workers), 0)
	}
	saved := haveAVX2
	haveAVX2 = false
	defer func() { haveAVX2 = saved }()
	tensortest.RunQuantized(t, New(2), 0)
}

// quantHosts is tensortest.QuantHosts (for the benchmarks).
func quantHosts(tb testing.TB, rows, cols int, seed uint64) map[string]*tensor.QuantHost {
	return tensortest.QuantHosts(tb, rows, cols, seed)
}
