package safetensors

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestBF16RoundTripAllPatterns(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BF16ToFloat32(uint16(h))
		got := Float32ToBF16(f)
		if f != f {
			if g := BF16ToFloat32(got); g == g {
				t.Fatalf("NaN %#04x became %v", h, g)
			}
			continue
		}
		if got != uint16(h) {
			t.Fatalf("bf16 %#04x -> %v -> %#04x", h, f, got)
		}
	}
}

func TestF16RoundTripAllPatterns(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToFloat32(uint16(h))
		got := Float32ToF16(f)
		if f != f {
			if g := F16ToFloat32(got); g == g {
				t.Fatalf("NaN %#04x became %v", h, g)
			}
			continue
		}
		if got != uint16(h) {
			t.Fatalf("f16 %#04x -> %v -> %#04x", h, f, got)
		}
	}
}

// nearestOracle rounds x to the nearest of the sorted finite values vals (ties to the even bit
// pattern, i.e. pattern&1 == 0), or to ±Inf past the largest value plus half an ulp, by search.
func nearestOracle(x float64, vals []float64, pats []uint16, inf uint16, halfUlpMax float64) uint16 {
	if math.Abs(x) >= vals[len(vals)-1]+halfUlpMax {
		if x < 0 {
			return inf | 0x8000
		}
		return inf
	}
	i := sort.SearchFloat64s(vals, x)
	best := -1
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(vals) {
			continue
		}
		if best < 0 {
			best = j
			continue
		}
		db, dj := math.Abs(vals[best]-x), math.Abs(vals[j]-x)
		if dj < db || (dj == db && pats[j]&1 == 0) {
			best = j
		}
	}
	return pats[best]
}

func TestFloat32RoundingAgainstOracle(t *testing.T) {
	type format struct {
		name   string
		widen  func(uint16) float32
		narrow func(float32) uint16
		inf    uint16
	}
	for _, fm := range []format{
		{"bf16", BF16ToFloat32, Float32ToBF16, 0x7f80},
		{"f16", F16ToFloat32, Float32ToF16, 0x7c00},
	} {
		t.Run(fm.name, func(t *testing.T) {
			// All non-negative finite values, sorted, with their patterns.
			var vals []float64
			var pats []uint16
			for h := 0; h < 0x8000; h++ {
				v := float64(fm.widen(uint16(h)))
				if math.IsInf(v, 0) || math.IsNaN(v) {
					continue
				}
				vals = append(vals, v)
				pats = append(pats, uint16(h))
			}
			maxv := vals[len(vals)-1]
			halfUlp := (maxv - vals[len(vals)-2]) / 2
			r := rand.New(rand.NewSource(1))
			check := func(x float32) {
				want := nearestOracle(math.Abs(float64(x)), vals, pats, fm.inf, halfUlp)
				if math.Signbit(float64(x)) {
					want |= 0x8000
				}
				if got := fm.narrow(x); got != want {
					t.Fatalf("%s(%v = %#08x) = %#04x, want %#04x", fm.name, x, math.Float32bits(x), got, want)
				}
			}
			for i := 0; i < 200000; i++ {
				check(math.Float32frombits(r.Uint32() & 0x7f7fffff)) // finite, random magnitude
				// midpoints and their neighbours
				j := r.Intn(len(vals) - 1)
				mid := float32((vals[j] + vals[j+1]) / 2)
				check(mid)
				check(math.Nextafter32(mid, 0))
				check(math.Nextafter32(mid, float32(math.Inf(1))))
				check(-mid)
			}
			check(float32(maxv + halfUlp))
			check(math.Nextafter32(float32(maxv+halfUlp), 0))
		})
	}
}

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
