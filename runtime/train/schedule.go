package train

import (
	"fmt"
	"math"
)

// Schedule names an LR schedule of transformers' get_*_schedule_with_warmup.
type Schedule string

// The supported schedules.
const (
	Constant Schedule = "constant" // get_constant_schedule_with_warmup
	Linear   Schedule = "linear"   // get_linear_schedule_with_warmup
	Cosine   Schedule = "cosine"   // get_cosine_schedule_with_warmup (half a cycle)
)

// ParseSchedule accepts "constant", "linear" or "cosine".
func ParseSchedule(s string) (Schedule, error) {
	switch Schedule(s) {
	case Constant, Linear, Cosine:
		return Schedule(s), nil
	}
	return "", fmt.Errorf("unknown LR schedule %q (want constant, linear or cosine)", s)
}

// WarmupSteps converts a warmup given as a ratio of total steps to steps as transformers'
// TrainingArguments.get_warmup_steps does: ceil(ratio·total). steps > 0 wins over the ratio.
func WarmupSteps(steps int, ratio float64, total int) int {
	if steps > 0 {
		return steps
	}
	return int(math.Ceil(ratio * float64(total)))
}

// Factor returns the multiplier of the base LR at optimizer step `step` (0-based: the LR used by the
// first update is Factor(0)), for `total` steps of which `warmup` are warmup, as transformers'
// LambdaLR schedules compute it:
//
//	warmup:   step/max(1, warmup) while step < warmup
//	constant: 1
//	linear:   max(0, (total−step)/max(1, total−warmup))
//	cosine:   max(0, ½(1 + cos(π·progress))), progress = (step−warmup)/max(1, total−warmup)
func (s Schedule) Factor(step, warmup, total int) float64 {
	if step < warmup {
		return float64(step) / float64(max(1, warmup))
	}
	switch s {
	case Linear:
		return math.Max(0, float64(total-step)/float64(max(1, total-warmup)))
	case Cosine:
		progress := float64(step-warmup) / float64(max(1, total-warmup))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*2*0.5*progress)))
	default:
		return 1
	}
}
