package eval

import (
	"fmt"
	"strings"
)

// Metric is one named score in [0, 1].
type Metric struct {
	Name  string
	Value float64
}

// Scores is the scoring of a list of outputs against their targets.
type Scores struct {
	// Predictions[i]: the earliest label of output i ("" if none) for Classification and Numeric
	// tasks; the output itself for FreeText tasks.
	Predictions []string
	// Correct[i]: prediction equals the lower-cased target (Classification, Numeric), or the
	// normalised output equals the normalised target (FreeText: exact match).
	Correct []bool
	// RowScore[i]: 1/0 for Correct (Classification, Numeric); token F1 (FreeText).
	RowScore []float64
	// Responses: FinLoRA's F1 inputs (target when correct, raw output otherwise).
	Responses []string
	// Metrics in report order. Classification: accuracy, f1. Numeric: accuracy, f1,
	// numeric_accuracy. FreeText: exact_match, token_f1.
	Metrics []Metric
	// Note says how the metrics relate to FinLoRA's (empty when they are FinLoRA's own).
	Note string
}

// Metric returns the value of the named metric.
func (s *Scores) Metric(name string) (float64, bool) {
	for _, m := range s.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// Score scores outputs (already extracted, see ExtractOutput) against targets for a task. labels
// is the label set for Classification/Numeric tasks (nil: Labels(targets), FinLoRA's choice).
func Score(scoring Scoring, targets, outputs, labels []string) (*Scores, error) {
	if len(targets) != len(outputs) {
		return nil, fmt.Errorf("score: %d targets but %d outputs", len(targets), len(outputs))
	}
	n := len(targets)
	s := &Scores{
		Predictions: make([]string, n),
		Correct:     make([]bool, n),
		RowScore:    make([]float64, n),
		Responses:   make([]string, n),
	}
	div := func(a float64) float64 {
		if n == 0 {
			return 0
		}
		return a / float64(n)
	}
	if scoring == FreeText {
		var em, f1 float64
		for i := range targets {
			s.Predictions[i] = outputs[i]
			s.Correct[i] = ExactMatch(outputs[i], targets[i]) == 1
			s.RowScore[i] = TokenF1(outputs[i], targets[i])
			if s.Correct[i] {
				em++
				s.Responses[i] = targets[i]
			} else {
				s.Responses[i] = outputs[i]
			}
			f1 += s.RowScore[i]
		}
		s.Metrics = []Metric{{"exact_match", div(em)}, {"token_f1", div(f1)}}
		s.Note = "FinLoRA scores this task with BERTScore (ProsusAI/finbert), not computed here; " +
			"exact_match and token_f1 are SQuAD-style (lower-case, no punctuation or articles)."
		return s, nil
	}
	if labels == nil {
		labels = Labels(targets)
	}
	correct, numeric := 0.0, 0.0
	for i := range targets {
		p, _ := EarliestLabel(outputs[i], labels)
		s.Predictions[i] = p
		s.Correct[i] = p != "" && p == strings.ToLower(targets[i])
		if s.Correct[i] {
			correct++
			s.RowScore[i] = 1
			s.Responses[i] = targets[i]
		} else {
			s.Responses[i] = outputs[i]
		}
		if scoring == Numeric && NumericMatch(outputs[i], targets[i]) {
			numeric++
		}
	}
	s.Metrics = []Metric{{"accuracy", div(correct)}, {"f1", WeightedF1(targets, s.Responses)}}
	if scoring == Numeric {
		s.Metrics = append(s.Metrics, Metric{"numeric_accuracy", div(numeric)})
		s.Note = "accuracy and f1 are FinLoRA's (earliest label over the distinct target numbers, as text); " +
			"numeric_accuracy is ours: the first number of the output equals the target at 2 decimals."
	}
	return s, nil
}
