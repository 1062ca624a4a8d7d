package model

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// RopeTables returns the rotary tables cos, sin F32 [P, HD/2] with P ≥ n, as Backend.Rope takes
// them: entry [p, i] is cos/sin(p · invFreq[i]) with Config.InvFreq (llama3/linear scaling
// applied), the angle rounded to float32 as transformers computes it. The model owns the tables
// (they are replaced when a longer one is needed, so do not keep them across calls that may grow
// them). Safe for one goroutine at a time, like the forward pass.
func (m *Model) RopeTables(n int) (cos, sin *tensor.Tensor, err error) {
	if err := m.ensureRope(n); err != nil {
		return nil, nil, err
	}
	return m.ropeCos, m.ropeSin, nil
}

// ensureRope grows the tables to at least n positions (doubling, to amortize).
func (m *Model) ensureRope(n int) error {
	if n <= m.ropeRows {
		return nil
	}
	rows := max(n, 2*m.ropeRows)
	inv := m.Config.InvFreq()
	half := len(inv)
	cv, sv := make([]float32, rows*half), make([]float32, rows*half)
	for p := 0; p < rows; p++ {
		for i, f := range inv {
			a := float32(float32(f) * float32(p)) // transformers: float32 inv_freq @ float32 positions
			cv[p*half+i] = float32(math.Cos(float64(a)))
			sv[p*half+i] = float32(math.Sin(float64(a)))
		}
	}
	c, err := m.Backend.FromFloat32(tensor.F32, []int{rows, half}, cv)
	if err != nil {
		return fmt.Errorf("rope tables: %w", err)
	}
	s, err := m.Backend.FromFloat32(tensor.F32, []int{rows, half}, sv)
	if err != nil {
		c.Free()
		return fmt.Errorf("rope tables: %w", err)
	}
	tensor.FreeAll(m.ropeCos, m.ropeSin)
	m.ropeCos, m.ropeSin, m.ropeRows = c, s, rows
	return nil
}
