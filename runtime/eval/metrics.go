package eval

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// EarliestLabel returns the label (from labels, compared with the lower-cased output) whose first
// occurrence in output starts earliest, and false when none occurs. Labels are expected
// lower-case (see Labels). A tie (two labels found at the same position, which happens only when
// one is a prefix of the other) goes to the longer label, then the lexicographically smaller;
// FinLoRA leaves ties to Python's set order, which is unspecified.
//
// Examples: "positive, not negative" → positive; "neutral or negative" → neutral.
func EarliestLabel(output string, labels []string) (string, bool) {
	low := strings.ToLower(output)
	best, bestAt := "", -1
	for _, l := range labels {
		at := strings.Index(low, l)
		if at < 0 {
			continue
		}
		if bestAt < 0 || at < bestAt || (at == bestAt && (len(l) > len(best) || (len(l) == len(best) && l < best))) {
			best, bestAt = l, at
		}
	}
	return best, bestAt >= 0
}

// ExtractOutput applies FinLoRA's output extraction to a prompt and the generated text: the text
// of prompt+generated after the last occurrence of delimiter, whitespace-trimmed (Python's
// "".join(o.split(delimiter)[-1]).strip()). An empty delimiter trims generated only.
func ExtractOutput(prompt, generated, delimiter string) string {
	if delimiter == "" {
		return strings.TrimSpace(generated)
	}
	full := prompt + generated
	if i := strings.LastIndex(full, delimiter); i >= 0 {
		full = full[i+len(delimiter):]
	}
	return strings.TrimSpace(full)
}

// WeightedF1 computes sklearn.metrics.f1_score(yTrue, yPred, average="weighted") with sklearn's
// default zero_division (a label's F1 is 0 when it has no true and no predicted samples; sklearn
// also warns): labels are the sorted union of both lists (strings compared exactly, case
// included); per label F1 = 2·tp / (2·tp + fp + fn); the average weights each label by its support
// (count in yTrue), so labels that occur only in yPred weigh 0 but their false positives still
// lower the other labels' precision. Returns 0 for empty input; panics if lengths differ (a
// broken invariant of the callers).
func WeightedF1(yTrue, yPred []string) float64 {
	if len(yTrue) != len(yPred) {
		panic("eval.WeightedF1: yTrue and yPred differ in length")
	}
	if len(yTrue) == 0 {
		return 0
	}
	type counts struct{ tp, pred, true int }
	c := map[string]*counts{}
	get := func(l string) *counts {
		if c[l] == nil {
			c[l] = &counts{}
		}
		return c[l]
	}
	for i := range yTrue {
		get(yTrue[i]).true++
		get(yPred[i]).pred++
		if yTrue[i] == yPred[i] {
			c[yTrue[i]].tp++
		}
	}
	labels := make([]string, 0, len(c))
	for l := range c {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	var num, den float64
	for _, l := range labels {
		k := c[l]
		f1 := 0.0
		if d := k.true + k.pred; d > 0 {
			f1 = 2 * float64(k.tp) / float64(d)
		}
		num += f1 * float64(k.true)
		den += float64(k.true)
	}
	return num / den
}

// NormalizeAnswer is SQuAD's answer normalisation: lower-case, drop ASCII punctuation, drop the
// articles a/an/the, collapse whitespace.
func NormalizeAnswer(s string) string {
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if r < 128 && unicode.IsPunct(r) || r < 128 && unicode.IsSymbol(r) {
			return -1
		}
		return r
	}, s)
	words := strings.Fields(s)
	kept := words[:0]
	for _, w := range words {
		if w != "a" && w != "an" && w != "the" {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, " ")
}

// ExactMatch is 1 when the normalised prediction equals the normalised reference, else 0.
func ExactMatch(prediction, reference string) float64 {
	if NormalizeAnswer(prediction) == NormalizeAnswer(reference) {
		return 1
	}
	return 0
}

// TokenF1 is SQuAD's token-overlap F1 of the normalised texts: with c the size of the multiset
// intersection of their whitespace tokens, P = c/|pred|, R = c/|ref|, F1 = 2PR/(P+R); 0 when
// c = 0; when either side is empty, 1 if both are, else 0.
func TokenF1(prediction, reference string) float64 {
	p := strings.Fields(NormalizeAnswer(prediction))
	r := strings.Fields(NormalizeAnswer(reference))
	if len(p) == 0 || len(r) == 0 {
		if len(p) == len(r) {
			return 1
		}
		return 0
	}
	count := map[string]int{}
	for _, w := range r {
		count[w]++
	}
	common := 0
	for _, w := range p {
		if count[w] > 0 {
			count[w]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	prec := float64(common) / float64(len(p))
	rec := float64(common) / float64(len(r))
	return 2 * prec * rec / (prec + rec)
}

var numberRE = regexp.MustCompile(`[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)`)

// FirstNumber returns the first number written in s (thousands commas allowed: "15,092.44"),
// and false when there is none.
func FirstNumber(s string) (float64, bool) {
	m := numberRE.FindString(s)
	if m == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m, ",", ""), 64)
	return v, err == nil
}

// NumericMatch reports whether the first number in output equals the target number once both are
// rounded to 2 decimals (the formula task asks for "a numerical answer with 2 decimal places").
// This is our addition; FinLoRA's own formula accuracy is the label rule (see Numeric).
func NumericMatch(output, target string) bool {
	t, err := strconv.ParseFloat(strings.TrimSpace(strings.ReplaceAll(target, ",", "")), 64)
	if err != nil {
		return false
	}
	o, ok := FirstNumber(output)
	return ok && math.Round(o*100) == math.Round(t*100)
}
