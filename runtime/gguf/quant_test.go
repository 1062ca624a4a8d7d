package gguf

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

// Hand-built blocks: each test encodes chosen integer quants and scales into a block following the
// layout of ggml-common.h (written here as an encoder, the inverse direction of the code under test)
// and computes the expected floats from the format's formula. Scales are powers of two and quants
// small integers, so every expected value is exact in float32 whatever the order of operations.

const (
	halfOne     = 0x3c00 // 1.0
	halfHalf    = 0x3800 // 0.5
	halfQuarter = 0x3400 // 0.25
	halfTwo     = 0x4000 // 2.0
)

func put16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

func check(t *testing.T, typ Type, blk []byte, want []float32) {
	t.Helper()
	got, err := Dequantize(typ, blk, len(want))
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: value %d = %v, want %v", typ, i, got[i], want[i])
		}
	}
}

func TestQ4_0Q4_1(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	q := make([]int, 32)
	for i := range q {
		q[i] = r.Intn(16)
	}
	qs := make([]byte, 16)
	for j := 0; j < 16; j++ {
		qs[j] = byte(q[j]) | byte(q[j+16])<<4
	}
	b0 := make([]byte, 18)
	put16(b0, halfHalf)
	copy(b0[2:], qs)
	b1 := make([]byte, 20)
	put16(b1, halfTwo)
	put16(b1[2:], 0xbc00) // m = -1
	copy(b1[4:], qs)
	w0, w1 := make([]float32, 32), make([]float32, 32)
	for i := range q {
		w0[i] = float32(q[i]-8) * 0.5
		w1[i] = float32(q[i])*2 - 1
	}
	check(t, TypeQ4_0, b0, w0)
	check(t, TypeQ4_1, b1, w1)
}

func TestQ5_0Q5_1(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	q := make([]int, 32)
	for i := range q {
		q[i] = r.Intn(32)
	}
	qs := make([]byte, 16)
	var qh uint32
	for j := 0; j < 16; j++ {
		qs[j] = byte(q[j]&15) | byte(q[j+16]&15)<<4
		qh |= uint32(q[j]>>4) << j
		qh |= uint32(q[j+16]>>4) << (j + 16)
	}
	b0 := make([]byte, 22)
	put16(b0, halfQuarter)
	binary.LittleEndian.PutUint32(b0[2:], qh)
	copy(b0[6:], qs)
	b1 := make([]byte, 24)
	put16(b1, halfHalf)
	put16(b1[2:], halfTwo)
	binary.LittleEndian.PutUint32(b1[4:], qh)
	copy(b1[8:], qs)
	w0, w1 := make([]float32, 32), make([]float32, 32)
	for i := range q {
		w0[i] = float32(q[i]-16) * 0.25
		w1[i] = float32(q[i])*0.5 + 2
	}
	check(t, TypeQ5_0, b0, w0)
	check(t, TypeQ5_1, b1, w1)
}

func TestQ8_0Q8_K(t *testing.T) {
	b := make([]byte, 34)
	put16(b, halfQuarter)
	want := make([]float32, 32)
	for i := 0; i < 32; i++ {
		v := int8(i*9 - 128)
		b[2+i] = byte(v)
		want[i] = float32(v) * 0.25
	}
	check(t, TypeQ8_0, b, want)

	k := make([]byte, 292)
	binary.LittleEndian.PutUint32(k, 0x3e000000) // 0.125
	wk := make([]float32, 256)
	for i := 0; i < 256; i++ {
		v := int8(i)
		k[4+i] = byte(v)
		wk[i] = float32(v) * 0.125
	}
	check(t, TypeQ8_K, k, wk)
}

func TestQ2_K(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	blk := make([]byte, 84)
	sc, mn, q := make([]int, 16), make([]int, 16), make([]int, 256)
	for s := range sc {
		sc[s], mn[s] = r.Intn(16), r.Intn(16)
		blk[s] = byte(sc[s] | mn[s]<<4)
	}
	for v := range q {
		q[v] = r.Intn(4)
		n, k, l := v/128, v%128/32, v%32 // value 128n+32k+l sits in qs[32n+l] at bits 2k
		blk[16+32*n+l] |= byte(q[v] << (2 * k))
	}
	put16(blk[80:], halfHalf)    // d
	put16(blk[82:], halfQuarter) // dmin
	want := make([]float32, 256)
	for v := range q {
		want[v] = 0.5*float32(sc[v/16])*float32(q[v]) - 0.25*float32(mn[v/16])
	}
	check(t, TypeQ2_K, blk, want)
}

func TestQ3_K(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	blk := make([]byte, 110)
	s6, q := make([]int, 16), make([]int, 256)
	for i := range s6 {
		s6[i] = r.Intn(64) // stored scale; the effective scale is s6-32
		lo, hi := byte(s6[i]&15), byte(s6[i]>>4)
		if i < 8 {
			blk[96+i] |= lo
		} else {
			blk[96+i-8] |= lo << 4
		}
		blk[96+8+i%4] |= hi << (2 * (i / 4))
	}
	for v := range q {
		u := r.Intn(8) // stored 3-bit value; the quant is u-4
		q[v] = u - 4
		n, k, l := v/128, v%128/32, v%32
		blk[32+32*n+l] |= byte(u&3) << (2 * k)
		if u>>2 == 1 {
			blk[l] |= 1 << (4*n + k)
		}
	}
	put16(blk[108:], halfHalf)
	want := make([]float32, 256)
	for v := range q {
		want[v] = 0.5 * float32(s6[v/16]-32) * float32(q[v])
	}
	check(t, TypeQ3_K, blk, want)
}

// packK4 packs eight 6-bit scales and mins into the 12 bytes used by Q4_K and Q5_K.
func packK4(dst []byte, sc, mn []int) {
	for j := 0; j < 4; j++ {
		dst[j] = byte(sc[j]) | byte(sc[j+4]>>4)<<6
		dst[j+4] = byte(mn[j]) | byte(mn[j+4]>>4)<<6
		dst[j+8] = byte(sc[j+4]&15) | byte(mn[j+4]&15)<<4
	}
}

func TestQ4_KQ5_K(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	sc, mn := make([]int, 8), make([]int, 8)
	for j := range sc {
		sc[j], mn[j] = r.Intn(64), r.Intn(64)
	}
	q4, q5 := make([]int, 256), make([]int, 256)
	b4, b5 := make([]byte, 144), make([]byte, 176)
	put16(b4, halfHalf)
	put16(b4[2:], halfQuarter)
	put16(b5, halfQuarter)
	put16(b5[2:], halfOne)
	packK4(b4[4:16], sc, mn)
	packK4(b5[4:16], sc, mn)
	for v := 0; v < 256; v++ {
		c, h, l := v/64, v%64/32, v%32 // value 64c+32h+l: nibble h of qs[32c+l], sub-block 2c+h
		q4[v] = r.Intn(16)
		b4[16+32*c+l] |= byte(q4[v]) << (4 * h)
		q5[v] = r.Intn(32)
		b5[48+32*c+l] |= byte(q5[v]&15) << (4 * h)
		b5[16+l] |= byte(q5[v]>>4) << (2*c + h)
	}
	w4, w5 := make([]float32, 256), make([]float32, 256)
	for v := 0; v < 256; v++ {
		s := v / 32
		w4[v] = 0.5*float32(sc[s])*float32(q4[v]) - 0.25*float32(mn[s])
		w5[v] = 0.25*float32(sc[s])*float32(q5[v]) - 1*float32(mn[s])
	}
	check(t, TypeQ4_K, b4, w4)
	check(t, TypeQ5_K, b5, w5)
}

func TestQ6_K(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	blk := make([]byte, 210)
	sc := make([]int8, 16)
	for i := range sc {
		sc[i] = int8(r.Intn(256) - 128)
		blk[192+i] = byte(sc[i])
	}
	q := make([]int, 256)
	for v := range q {
		u := r.Intn(64)
		q[v] = u - 32
		n, k, l := v/128, v%128/32, v%32
		lowIdx := 64*n + l
		if k == 1 || k == 3 {
			lowIdx += 32
		}
		blk[lowIdx] |= byte(u&15) << (4 * (k / 2))
		blk[128+32*n+l] |= byte(u>>4) << (2 * k)
	}
	put16(blk[208:], halfQuarter)
	want := make([]float32, 256)
	for v := range q {
		want[v] = 0.25 * float32(sc[v/16]) * float32(q[v])
	}
	check(t, TypeQ6_K, blk, want)
}

func TestDequantizeErrors(t *testing.T) {
	if _, err := Dequantize(TypeQ4_K, make([]byte, 144), 128); err == nil {
		t.Error("partial block: no error")
	}
	if _, err := Dequantize(TypeQ4_K, make([]byte, 143), 256); err == nil {
		t.Error("short data: no error")
	}
	if _, err := Dequantize(TypeIQ2_XXS, make([]byte, 66), 256); err == nil {
		t.Error("unsupported type: no error")
	}
	if _, err := Dequantize(Type(99), nil, 0); err == nil {
		t.Error("unknown type: no error")
	}
}

// TestParallelDequantize checks that the multi-goroutine path gives the serial result.
func TestParallelDequantize(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	const blocks = 20000
	src := make([]byte, 34*blocks)
	r.Read(src)
	for b := 0; b < blocks; b++ {
		put16(src[34*b:], halfQuarter)
	}
	got, err := Dequantize(TypeQ8_0, src, 32*blocks)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 32*blocks)
	dequantQ8_0(want, src)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: parallel %v, serial %v", i, got[i], want[i])
		}
	}
}
