package data

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// View limits used by HTML and String.
const (
	ViewRows     = 10  // rows shown
	ViewMaxChars = 160 // characters of a string cell before it is cut with "…"
	ViewMaxList  = 12  // list elements shown before "…"
)

// CellString renders row i of a column for display: strings cut to maxChars runes (with "…"),
// integer lists as "[1, 2, …] (n=57)", null as "null".
func CellString(a arrow.Array, i, maxChars int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch v := a.(type) {
	case *array.String:
		return truncate(v.Value(i), maxChars)
	case *array.LargeString:
		return truncate(v.Value(i), maxChars)
	case *array.List, *array.LargeList:
		if isIntList(a.DataType()) {
			vals, err := listRowInt32(a, i)
			if err == nil {
				var sb strings.Builder
				sb.WriteByte('[')
				for k, x := range vals {
					if k == ViewMaxList {
						sb.WriteString(", …")
						break
					}
					if k > 0 {
						sb.WriteString(", ")
					}
					sb.WriteString(strconv.Itoa(int(x)))
				}
				sb.WriteByte(']')
				if len(vals) > ViewMaxList {
					fmt.Fprintf(&sb, " (n=%d)", len(vals))
				}
				return sb.String()
			}
		}
	}
	return truncate(a.ValueStr(i), maxChars)
}

func truncate(s string, maxChars int) string {
	if maxChars <= 0 || utf8.RuneCountInString(s) <= maxChars {
		return s
	}
	r := []rune(s)
	return string(r[:maxChars]) + "…"
}

// previewCells returns the first rows of every column as display strings: cells[row][col].
func (d *Dataset) previewCells(rows, maxChars int) [][]string {
	n := min(rows, d.NumRows())
	nc := int(d.tbl.NumCols())
	cells := make([][]string, n)
	for r := range cells {
		cells[r] = make([]string, nc)
	}
	for c := 0; c < nc; c++ {
		r := 0
		for _, ch := range d.tbl.Column(c).Data().Chunks() {
			for i := 0; i < ch.Len() && r < n; i++ {
				cells[r][c] = CellString(ch, i, maxChars)
				r++
			}
			if r >= n {
				break
			}
		}
	}
	return cells
}

// HTML renders the dataset for a notebook (MIME text/html): name, row count, kind, the schema
// (column: type) and the first ViewRows rows, every value HTML-escaped and long strings cut.
func (d *Dataset) HTML() string {
	d.check()
	var sb strings.Builder
	sb.WriteString(`<div class="finlora-dataset">`)
	fmt.Fprintf(&sb, "<p><b>Dataset</b> %s &middot; %d rows &middot; %d columns &middot; %s",
		html.EscapeString(d.name), d.NumRows(), d.tbl.NumCols(), html.EscapeString(d.Kind().String()))
	if len(d.skipped) > 0 {
		fmt.Fprintf(&sb, " &middot; %d bad lines skipped (first: line %d)", len(d.skipped), d.skipped[0].Line)
	}
	sb.WriteString("</p>\n<p><b>Schema</b>: ")
	for i, f := range d.tbl.Schema().Fields() {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "<code>%s: %s</code>", html.EscapeString(f.Name), html.EscapeString(f.Type.String()))
	}
	sb.WriteString("</p>\n<table>\n<thead><tr><th></th>")
	for _, name := range d.ColumnNames() {
		fmt.Fprintf(&sb, "<th>%s</th>", html.EscapeString(name))
	}
	sb.WriteString("</tr></thead>\n<tbody>\n")
	for r, row := range d.previewCells(ViewRows, ViewMaxChars) {
		fmt.Fprintf(&sb, "<tr><th>%d</th>", r)
		for _, c := range row {
			fmt.Fprintf(&sb, `<td style="text-align:left;white-space:pre-wrap">%s</td>`, html.EscapeString(c))
		}
		sb.WriteString("</tr>\n")
	}
	sb.WriteString("</tbody>\n</table>\n")
	if d.NumRows() > ViewRows {
		fmt.Fprintf(&sb, "<p>… %d more rows</p>\n", d.NumRows()-ViewRows)
	}
	sb.WriteString("</div>")
	return sb.String()
}

// String renders the dataset as text: a header line with name, rows and schema, then the first
// 5 rows, one "column: value" per line, strings cut to 80 characters and newlines shown as ⏎.
func (d *Dataset) String() string {
	if d == nil || d.released.Load() {
		return "Dataset(released)"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Dataset %s: %d rows, %s\n", d.name, d.NumRows(), d.Kind())
	for _, f := range d.tbl.Schema().Fields() {
		fmt.Fprintf(&sb, "  %s: %s\n", f.Name, f.Type)
	}
	names := d.ColumnNames()
	for r, row := range d.previewCells(5, 80) {
		fmt.Fprintf(&sb, "[%d]\n", r)
		for c, v := range row {
			fmt.Fprintf(&sb, "  %s: %s\n", names[c], strings.ReplaceAll(v, "\n", "⏎"))
		}
	}
	if d.NumRows() > 5 {
		fmt.Fprintf(&sb, "… %d more rows\n", d.NumRows()-5)
	}
	return sb.String()
}
