package cpu

import "golang.org/x/sys/cpu"

// haveAVX2 selects the assembly kernels (AVX2 + FMA); tests switch it off to check the Go ones.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dot4F32AVX2(x, w0, w1, w2, w3 *float32, n int) (s0, s1, s2, s3 float64)

//go:noescape
func dot4BF16AVX2(x *float32, w0, w1, w2, w3 *uint16, n int) (s0, s1, s2, s3 float64)

//go:noescape
func kern4x8AVX2(a *float32, lda int, w *float32, ldw int, k int, c *float64, ldc int)
