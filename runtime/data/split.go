package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Permutation returns a seeded pseudo-random permutation of 0..n-1: a Fisher-Yates shuffle
// driven by math/rand/v2's PCG with state (seed, 0x9e3779b97f4a7c15). The same (n, seed) gives the
// same permutation on every platform and Go version that keeps PCG's definition.
func Permutation(n int, seed uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := n - 1; i > 0; i-- {
		j := int(r.Uint64N(uint64(i + 1)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// SplitIndices splits row indices 0..n-1 into disjoint train and test sets:
// nTest = round(n*testFraction) (clamped to [0, n]); the test rows are the first nTest entries of
// Permutation(n, seed) and the train rows the rest; both lists are then sorted ascending, so each
// keeps the file's row order. Deterministic in (n, testFraction, seed).
func SplitIndices(n int, testFraction float64, seed uint64) (train, test []int, err error) {
	if testFraction < 0 || testFraction > 1 || math.IsNaN(testFraction) {
		return nil, nil, fmt.Errorf("split: test fraction %v outside [0, 1]", testFraction)
	}
	nTest := int(math.Round(float64(n) * testFraction))
	p := Permutation(n, seed)
	test = append([]int(nil), p[:nTest]...)
	train = append([]int(nil), p[nTest:]...)
	sort.Ints(test)
	sort.Ints(train)
	return train, test, nil
}

// Split returns disjoint train and test datasets by SplitIndices(NumRows, testFraction, seed).
// The caller owns (and must Release) both.
func (d *Dataset) Split(testFraction float64, seed uint64) (train, test *Dataset, err error) {
	tr, te, err := SplitIndices(d.NumRows(), testFraction, seed)
	if err != nil {
		return nil, nil, fmt.Errorf("dataset %s: %w", d.name, err)
	}
	if train, err = d.Take(tr); err != nil {
		return nil, nil, err
	}
	if test, err = d.Take(te); err != nil {
		train.Release()
		return nil, nil, err
	}
	train.name = d.name + " [train]"
	test.name = d.name + " [test]"
	return train, test, nil
}

// Shuffle returns the rows in the order of Permutation(NumRows, seed). The caller owns the result.
func (d *Dataset) Shuffle(seed uint64) (*Dataset, error) {
	return d.Take(Permutation(d.NumRows(), seed))
}
