package quant

import "testing"

func TestPyFloatRepr(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{float64(float32(0.05196111276745796)), "0.05196111276745796"},
		{1e-05, "1e-05"}, {0.0001, "0.0001"}, {500000.0, "500000.0"}, {6.0, "6.0"}, {0, "0.0"},
		{1e16, "1e+16"}, {1234567890123456.0, "1234567890123456.0"}, {-2.5, "-2.5"}, {1.5e-7, "1.5e-07"},
		{123.456, "123.456"},
	} {
		if got := pyFloatRepr(c.f); got != c.want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}
