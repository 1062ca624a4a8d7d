package train

import (
	"math"
	"testing"
)

// The LM head and loss in row chunks (train.headChunkRows) give the unchunked loss and gradients:
// chunks of 7 rows over 4 padded rows (chunk boundaries inside and across sequences).
func TestHeadChunks(t *testing.T) {
	base := loadTiny(t)
	rows := rows4(t)
	a := startAdapter(t, fixtures[1], 0)
	loss1, g1, err := Gradients(base, a, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	saved := headChunkRows
	headChunkRows = 7
	defer func() { headChunkRows = saved }()
	loss2, g2, err := Gradients(base, a, rows, false)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss1-loss2) > 1e-6*loss1 {
		t.Errorf("loss %g unchunked, %g in chunks of 7 rows", loss1, loss2)
	}
	for n, g := range g1 {
		if e := relErr(g, g2[n]); e > 1e-5 {
			t.Errorf("%s: gradients differ by %g", n, e)
		}
	}
}
