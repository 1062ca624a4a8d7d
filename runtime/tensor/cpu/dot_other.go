//go:build !amd64

package cpu

// haveAVX2 is false off amd64: the Go kernels run.
var haveAVX2 = false

func dot4F32AVX2(x, w0, w1, w2, w3 *float32, n int) (s0, s1, s2, s3 float64) {
	panic("cpu: no assembly kernels on this architecture")
}

func dot4BF16AVX2(x *float32, w0, w1, w2, w3 *uint16, n int) (s0, s1, s2, s3 float64) {
	panic("cpu: no assembly kernels on this architecture")
}

func kern4x8AVX2(a *float32, lda int, w *float32, ldw int, k int, c *float64, ldc int) {
	panic("cpu: no assembly kernels on this architecture")
}
