package quant

import (
	"math/rand/v2"
	"testing"
)

// Throughput on the CPU, in MB/s of float32 weights (input of quantization, output of
// dequantization), for a 2048x2048 matrix:
//
//	go test -run '^$' -bench . -benchtime 10x ./quant/

const benchRows, benchCols = 2048, 2048

func benchWeights() []float32 {
	r := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, benchRows*benchCols)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.02)
	}
	return w
}

func BenchmarkQuantize(b *testing.B) {
	w := benchWeights()
	for _, c := range []struct {
		name string
		o    Options4
	}{
		{"nf4-dq", Options4{Type: NF4, DoubleQuant: true}},
		{"nf4", Options4{Type: NF4}},
		{"fp4", Options4{Type: FP4}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(w)))
			for b.Loop() {
				if _, err := Quantize4(w, []int{benchRows, benchCols}, c.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("int8", func(b *testing.B) {
		b.SetBytes(int64(4 * len(w)))
		for b.Loop() {
			if _, err := QuantizeInt8(w, benchRows, benchCols); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDequantize(b *testing.B) {
	w := benchWeights()
	dst := make([]float32, len(w))
	for _, c := range []struct {
		name string
		o    Options4
	}{
		{"nf4-dq", Options4{Type: NF4, DoubleQuant: true}},
		{"fp4", Options4{Type: FP4}},
	} {
		q, _ := Quantize4(w, []int{benchRows, benchCols}, c.o)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(w)))
			for b.Loop() {
				q.Dequantize(dst)
			}
		})
	}
	q8, _ := QuantizeInt8(w, benchRows, benchCols)
	b.Run("int8", func(b *testing.B) {
		b.SetBytes(int64(4 * len(w)))
		for b.Loop() {
			q8.Dequantize(dst)
		}
	})
}
