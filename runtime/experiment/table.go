package experiment

import (
	"fmt"
	"html"
	"strings"
)

// Table is the experiment's result table: one row per task with the accuracy of always answering
// the most frequent label of the evaluated rows (the majority baseline), the base model's and each
// adapter's accuracy and weighted F1 (FinLoRA's metrics, in %), then rows for the training time
// and the training memory of each adapter.
type Table struct {
	Header []string
	Rows   [][]string
}

// Table builds the result table from what has run so far (missing results show as "–").
func (e *Experiment) Table() *Table {
	t := &Table{Header: []string{"task", "n", "majority acc", "base acc", "base F1"}}
	for _, a := range e.Adapters {
		t.Header = append(t.Header, fmt.Sprintf("r=%d acc", a.Rank), fmt.Sprintf("r=%d F1", a.Rank))
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f", 100*v) }
	for _, task := range e.Options.Tasks {
		_, share := MajorityLabel(e.Splits.Eval[task])
		row := []string{task, fmt.Sprint(len(e.Splits.Eval[task])), pct(share), "–", "–"}
		if s, ok := e.Base[task]; ok {
			row[3], row[4] = pct(s.Accuracy), pct(s.F1)
		}
		for _, a := range e.Adapters {
			if s, ok := a.Results[task]; ok {
				row = append(row, pct(s.Accuracy), pct(s.F1))
			} else {
				row = append(row, "–", "–")
			}
		}
		t.Rows = append(t.Rows, row)
	}
	timeRow := []string{"training time", fmt.Sprint(len(e.Splits.Train)), "", "", ""}
	memRow := []string{"training memory", "", "", "", ""}
	for _, a := range e.Adapters {
		timeRow = append(timeRow, fmt.Sprintf("%.0f s (%d steps)", a.TrainTime.Seconds(), a.Steps), "")
		memRow = append(memRow, humanBytes(a.Memory.Total())+fmt.Sprintf(" (act. %s)", humanBytes(a.Memory.Activations)), "")
	}
	t.Rows = append(t.Rows, timeRow, memRow)
	return t
}

// String renders the table as aligned text.
func (t *Table) String() string {
	w := make([]int, len(t.Header))
	for i, h := range t.Header {
		w[i] = len([]rune(h))
	}
	for _, r := range t.Rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var sb strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(&sb, "%-*s  ", w[i], c)
		}
		sb.WriteString("\n")
	}
	line(t.Header)
	for _, r := range t.Rows {
		line(r)
	}
	return sb.String()
}

// Markdown renders the table as a GitHub Markdown table.
func (t *Table) Markdown() string {
	var sb strings.Builder
	sb.WriteString("| " + strings.Join(t.Header, " | ") + " |\n|")
	for range t.Header {
		sb.WriteString(" --- |")
	}
	sb.WriteString("\n")
	for _, r := range t.Rows {
		sb.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return sb.String()
}

// HTML renders the table for a notebook.
func (t *Table) HTML() string {
	var sb strings.Builder
	sb.WriteString(`<table style="border-collapse:collapse"><tr>`)
	for _, h := range t.Header {
		fmt.Fprintf(&sb, `<th style="padding:2px 8px;text-align:right">%s</th>`, html.EscapeString(h))
	}
	sb.WriteString("</tr>")
	for _, r := range t.Rows {
		sb.WriteString("<tr>")
		for i, c := range r {
			align := "right"
			if i == 0 {
				align = "left"
			}
			fmt.Fprintf(&sb, `<td style="padding:2px 8px;text-align:%s">%s</td>`, align, html.EscapeString(c))
		}
		sb.WriteString("</tr>")
	}
	sb.WriteString("</table>")
	return sb.String()
}

// MajorityLabel returns the most frequent target (lower-cased) of rows and its share.
func MajorityLabel(rows []Row) (string, float64) {
	count := map[string]int{}
	best := ""
	for _, r := range rows {
		l := strings.ToLower(r.Target)
		count[l]++
		if count[l] > count[best] || (count[l] == count[best] && l < best) {
			best = l
		}
	}
	if len(rows) == 0 {
		return "", 0
	}
	return best, float64(count[best]) / float64(len(rows))
}
