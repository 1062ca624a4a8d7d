package safetensors

import (
	"math"
	"testing"
)

func TestF8(t *testing.T) {
	cases := []struct {
		name string
		f    func(uint8) float32
		b    uint8
		want float64
	}{
		{"e4m3 one", F8E4M3ToFloat32, 0x38, 1},
		{"e4m3 max", F8E4M3ToFloat32, 0x7e, 448},
		{"e4m3 -max", F8E4M3ToFloat32, 0xfe, -448},
		{"e4m3 min normal", F8E4M3ToFloat32, 0x08, 1.0 / 64},
		{"e4m3 min subnormal", F8E4M3ToFloat32, 0x01, 1.0 / 512},
		{"e4m3 1.875*2^8 (exp 15 is finite)", F8E4M3ToFloat32, 0x7d, 416},
		{"e4m3 nan", F8E4M3ToFloat32, 0x7f, math.NaN()},
		{"e4m3 -0", F8E4M3ToFloat32, 0x80, math.Copysign(0, -1)},
		{"e5m2 one", F8E5M2ToFloat32, 0x3c, 1},
		{"e5m2 max", F8E5M2ToFloat32, 0x7b, 57344},
		{"e5m2 inf", F8E5M2ToFloat32, 0x7c, math.Inf(1)},
		{"e5m2 -inf", F8E5M2ToFloat32, 0xfc, math.Inf(-1)},
		{"e5m2 nan", F8E5M2ToFloat32, 0x7e, math.NaN()},
		{"e5m2 min subnormal", F8E5M2ToFloat32, 0x01, 1.0 / 65536},
	}
	for _, c := range cases {
		got := float64(c.f(c.b))
		if math.IsNaN(c.want) {
			if !math.IsNaN(got) {
				t.Errorf("%s: %v, want NaN", c.name, got)
			}
			continue
		}
		if got != c.want || math.Signbit(got) != math.Signbit(c.want) {
			t.Errorf("%s: %#02x -> %v, want %v", c.name, c.b, got, c.want)
		}
	}
	// e4m3: all 254 non-NaN values are distinct and ordered like their magnitudes.
	prev := -1.0
	for b := 0; b < 0x7f; b++ {
		v := float64(F8E4M3ToFloat32(uint8(b)))
		if v <= prev {
			t.Fatalf("e4m3 %#02x = %v not above %v", b, v, prev)
		}
		prev = v
	}
}

func TestFloat32BytesRoundTrip(t *testing.T) {
	v := []float32{0, -1.5, float32(math.Inf(1)), 3.1415927, math.SmallestNonzeroFloat32}
	b := Float32Bytes(v)
	if len(b) != 20 || b[4] != 0 || b[7] != 0xbf || b[6] != 0xc0 { // -1.5 = 0xbfc00000
		t.Fatalf("Float32Bytes little-endian layout wrong: % x", b)
	}
	got := BytesFloat32(b)
	for i := range v {
		if got[i] != v[i] {
			t.Fatalf("round trip %v -> %v", v, got)
		}
	}
}
