package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/finlora/finlora/runtime/tensor"
)

// Dequantize decodes n elements of type t from src (exactly n/BlockSize blocks, no more, no less)
// into a new float32 slice owned by the caller, as ggml's dequantize_row_* defines each type.
// Large inputs are split across goroutines (one per CPU).
func Dequantize(t Type, src []byte, n int) ([]float32, error) {
	dst := make([]float32, n)
	if err := DequantizeInto(dst, t, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// DequantizeInto decodes len(dst) elements of type t from src into dst. src must hold exactly the
// blocks of len(dst) elements. Products are rounded to float32 before each addition (explicit
// conversions stop the compiler fusing them), matching ggml's and gguf-py's float32 arithmetic.
func DequantizeInto(dst []float32, t Type, src []byte) error {
	tr, ok := traits[t]
	if !ok {
		return fmt.Errorf("gguf: dequantize: unknown tensor type %d", uint32(t))
	}
	if tr.dequant == nil {
		return fmt.Errorf("gguf: dequantize: tensor type %s is not supported", t)
	}
	want, ok := t.RowBytes(int64(len(dst)))
	if !ok {
		return fmt.Errorf("gguf: dequantize %s: %d elements is not a whole number of %d-element blocks", t, len(dst), tr.blockSize)
	}
	if int64(len(src)) != want {
		return fmt.Errorf("gguf: dequantize %s: %d elements need %d bytes, have %d", t, len(dst), want, len(src))
	}
	blocks := len(dst) / tr.blockSize
	workers := runtime.GOMAXPROCS(0)
	const minBlocksPerWorker = 4096
	if workers > blocks/minBlocksPerWorker {
		workers = blocks / minBlocksPerWorker
	}
	if workers <= 1 {
		tr.dequant(dst, src)
		return nil
	}
	var wg sync.WaitGroup
	per := (blocks + workers - 1) / workers
	for b0 := 0; b0 < blocks; b0 += per {
		b1 := min(b0+per, blocks)
		wg.Add(1)
		go func(b0, b1 int) {
			defer wg.Done()
			tr.dequant(dst[b0*tr.blockSize:b1*tr.blockSize], src[b0*tr.typeSize:b1*tr.typeSize])
		}(b0, b1)
	}
	wg.Wait()
	return nil
}

// Each dequantX below decodes whole blocks: len(dst) is a multiple of the block size and src
// holds exactly the matching blocks (checked by DequantizeInto).

func f16(b []byte) float32 { return tensor.F16ToFloat32(binary.LittleEndian.Uint16(b)) }

func dequantF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f16(src[2*i:])
	}
}

func dequantBF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = tensor.BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func dequantF64(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func dequantI8(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int8(src[i]))
	}
}

func dequantI16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
	}
}

func dequantI32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
	}
}

// Q4_0 block (18 bytes, 32 values): d f16 | qs[16]. Value j<16 is the low nibble of qs[j], value
// j+16 the high nibble; x = (nibble - 8) * d.
func dequantQ4_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[18*b:18*b+18], dst[32*b:32*b+32]
		d := f16(blk)
		qs := blk[2:]
		for j := 0; j < 16; j++ {
			y[j] = float32(int(qs[j]&0x0f)-8) * d
			y[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// Q4_1 block (20 bytes): d f16 | m f16 | qs[16]; x = nibble*d + m (nibbles as in Q4_0).
func dequantQ4_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[20*b:20*b+20], dst[32*b:32*b+32]
		d, m := f16(blk), f16(blk[2:])
		qs := blk[4:]
		for j := 0; j < 16; j++ {
			y[j] = float32(float32(qs[j]&0x0f)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}

// Q5_0 block (22 bytes): d f16 | qh u32 | qs[16]. Value j takes its 5th bit from bit j of qh,
// value j+16 from bit j+16; x = (5-bit value - 16) * d.
func dequantQ5_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[22*b:22*b+22], dst[32*b:32*b+32]
		d := f16(blk)
		qh := binary.LittleEndian.Uint32(blk[2:])
		qs := blk[6:]
		for j := 0; j < 16; j++ {
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(int(qs[j]&0x0f)|h0-16) * d
			y[j+16] = float32(int(qs[j]>>4)|h1-16) * d
		}
	}
}

// Q5_1 block (24 bytes): d f16 | m f16 | qh u32 | qs[16]; x = 5-bit value * d + m.
func dequantQ5_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[24*b:24*b+24], dst[32*b:32*b+32]
		d, m := f16(blk), f16(blk[2:])
		qh := binary.LittleEndian.Uint32(blk[4:])
		qs := blk[8:]
		for j := 0; j < 16; j++ {
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(float32(int(qs[j]&0x0f)|h0)*d) + m
			y[j+16] = float32(float32(int(qs[j]>>4)|h1)*d) + m
		}
	}
}

// Q8_0 block (34 bytes): d f16 | qs[32] int8; x = q * d.
func dequantQ8_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[34*b:34*b+34], dst[32*b:32*b+32]
		d := f16(blk)
		for j := 0; j < 32; j++ {
			y[j] = float32(int8(blk[2+j])) * d
		}
	}
}

// Q8_K block (292 bytes, 256 values): d f32 | qs[256] int8 | bsums[16] int16 (unused here);
// x = q * d.
func dequantQ8_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[292*b:292*b+292], dst[qkK*b:qkK*b+qkK]
		d := math.Float32frombits(binary.LittleEndian.Uint32(blk))
		for j := 0; j < qkK; j++ {
			y[j] = float32(int8(blk[4+j])) * d
		}
	}
}

// Q2_K block (84 bytes): scales[16] | qs[64] | d f16 | dmin f16. Each scales byte holds a 4-bit
// scale (low) and a 4-bit min (high) for 16 values. Values come in two halves of 128; in half n,
// the 2-bit field at shift 2k of qs[32n+l] is value 128n+32k+l, with sub-block index 8n+2k+l/16.
// x = d*scale*q - dmin*min.
func dequantQ2_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[84*b:84*b+84], dst[qkK*b:qkK*b+qkK]
		sc, qs := blk[0:16], blk[16:80]
		d, dmin := f16(blk[80:]), f16(blk[82:])
		for n := 0; n < 2; n++ {
			q := qs[32*n : 32*n+32]
			for k := 0; k < 4; k++ {
				shift := 2 * k
				for h := 0; h < 2; h++ {
					s := sc[8*n+2*k+h]
					dl := d * float32(s&0x0f)
					ml := dmin * float32(s>>4)
					out := y[128*n+32*k+16*h:]
					for l := 0; l < 16; l++ {
						out[l] = float32(dl*float32((q[16*h+l]>>shift)&3)) - ml
					}
				}
			}
		}
	}
}

// q3kScale returns the 6-bit signed scale number i (0..15) of a Q3_K block's 12 scale bytes:
// the low 4 bits come from nibbles of bytes 0..7 (i<8: low nibble of byte i; else high nibble of
// byte i-8), the high 2 bits from bytes 8..11 (byte 8+i%4, bit pair i/4); the result is biased by 32.
func q3kScale(s []byte, i int) int {
	var lo byte
	if i < 8 {
		lo = s[i] & 0x0f
	} else {
		lo = s[i-8] >> 4
	}
	hi := (s[8+i%4] >> (2 * (i / 4))) & 3
	return int(lo|hi<<4) - 32
}

// Q3_K block (110 bytes): hmask[32] | qs[64] | scales[12] | d f16. A value's low 2 bits come from qs
// as in Q2_K; its third bit is bit 4n+k of hmask[l] (for value 128n+32k+l); when that bit is clear
// 4 is subtracted. x = d*(scale-32)*(q - (hbit ? 0 : 4)).
func dequantQ3_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[110*b:110*b+110], dst[qkK*b:qkK*b+qkK]
		hm, qs, sc := blk[0:32], blk[32:96], blk[96:108]
		d := f16(blk[108:])
		for n := 0; n < 2; n++ {
			q := qs[32*n : 32*n+32]
			for k := 0; k < 4; k++ {
				shift := 2 * k
				mask := byte(1) << (4*n + k)
				for h := 0; h < 2; h++ {
					dl := d * float32(q3kScale(sc, 8*n+2*k+h))
					out := y[128*n+32*k+16*h:]
					for l := 0; l < 16; l++ {
						i := 16*h + l
						v := int((q[i] >> shift) & 3)
						if hm[i]&mask == 0 {
							v -= 4
						}
						out[l] = dl * float32(v)
					}
				}
			}
		}
	}
}

// scaleMinK4 unpacks scale and min number j (0..7) of the 12 packed bytes shared by Q4_K and
// Q5_K: for j<4 the low 6 bits of bytes j and j+4; for j>=4 a nibble of byte j+4 plus the top
// 2 bits of bytes j-4 (scale) and j (min).
func scaleMinK4(q []byte, j int) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K block (144 bytes): d f16 | dmin f16 | scales[12] | qs[128]. Four chunks of 64 values; chunk
// c uses qs[32c:32c+32]: low nibbles are values 64c..64c+31 (sub-block 2c), high nibbles the next
// 32 (sub-block 2c+1). x = d*scale*q - dmin*min.
func dequantQ4_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[144*b:144*b+144], dst[qkK*b:qkK*b+qkK]
		d, dmin := f16(blk), f16(blk[2:])
		sc, qs := blk[4:16], blk[16:144]
		for c := 0; c < 4; c++ {
			s1, m1 := scaleMinK4(sc, 2*c)
			s2, m2 := scaleMinK4(sc, 2*c+1)
			d1, mm1 := d*float32(s1), dmin*float32(m1)
			d2, mm2 := d*float32(s2), dmin*float32(m2)
			q, out := qs[32*c:32*c+32], y[64*c:64*c+64]
			for l := 0; l < 32; l++ {
				out[l] = float32(d1*float32(q[l]&0x0f)) - mm1
				out[32+l] = float32(d2*float32(q[l]>>4)) - mm2
			}
		}
	}
}

// Q5_K block (176 bytes): d f16 | dmin f16 | scales[12] | qh[32] | qs[128]. As Q4_K, plus a fifth
// bit: for chunk c, bit 2c of qh[l] for the low-nibble value l, bit 2c+1 for the high one.
func dequantQ5_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[176*b:176*b+176], dst[qkK*b:qkK*b+qkK]
		d, dmin := f16(blk), f16(blk[2:])
		sc, qh, qs := blk[4:16], blk[16:48], blk[48:176]
		for c := 0; c < 4; c++ {
			s1, m1 := scaleMinK4(sc, 2*c)
			s2, m2 := scaleMinK4(sc, 2*c+1)
			d1, mm1 := d*float32(s1), dmin*float32(m1)
			d2, mm2 := d*float32(s2), dmin*float32(m2)
			q, out := qs[32*c:32*c+32], y[64*c:64*c+64]
			for l := 0; l < 32; l++ {
				lo := int(q[l]&0x0f) + int(qh[l]>>(2*c)&1)<<4
				hi := int(q[l]>>4) + int(qh[l]>>(2*c+1)&1)<<4
				out[l] = float32(d1*float32(lo)) - mm1
				out[32+l] = float32(d2*float32(hi)) - mm2
			}
		}
	}
}

// Q6_K block (210 bytes): ql[128] | qh[64] | scales[16] int8 | d f16. Two halves of 128 values;
// in half n, for l<32: value 128n+32k+l (k=0..3) takes its low 4 bits from ql[64n+l] (k=0 low
// nibble, k=2 high nibble) or ql[64n+32+l] (k=1 low, k=3 high), its high 2 bits from bit pair k
// of qh[32n+l], is biased by 32, and uses scale scales[8n+2k+l/16]. x = d*scale*q.
func dequantQ6_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/qkK; b++ {
		blk, y := src[210*b:210*b+210], dst[qkK*b:qkK*b+qkK]
		ql, qh, sc := blk[0:128], blk[128:192], blk[192:208]
		d := f16(blk[208:])
		for n := 0; n < 2; n++ {
			for l := 0; l < 32; l++ {
				lo := ql[64*n+l]
				lo2 := ql[64*n+32+l]
				h := qh[32*n+l]
				q := [4]int{
					int(lo&0x0f|(h&3)<<4) - 32,
					int(lo2&0x0f|(h>>2&3)<<4) - 32,
					int(lo>>4|(h>>4&3)<<4) - 32,
					int(lo2>>4|(h>>6&3)<<4) - 32,
				}
				for k := 0; k < 4; k++ {
					s := float32(int8(sc[8*n+2*k+l/16]))
					y[128*n+32*k+l] = (d * s) * float32(q[k])
				}
			}
		}
	}
}
