package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// pyFloatRepr formats f as Python's repr(float) does (the shortest digits that round-trip, fixed
// notation for decimal exponents -4..15 with at least one digit after the point, otherwise
// d.ddde±XX), and NaN/Infinity as Python's json module writes them.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	if exp < -4 || exp >= 16 {
		return e
	}
	neg := strings.HasPrefix(mant, "-")
	digits := strings.Replace(strings.TrimPrefix(mant, "-"), ".", "", 1)
	var s string
	if exp < 0 {
		s = "0." + strings.Repeat("0", -exp-1) + digits
	} else if len(digits) <= exp+1 {
		s = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	} else {
		s = digits[:exp+1] + "." + digits[exp+1:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// pyString writes s as Python's json.dumps does with ensure_ascii=True.
func pyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// pyIndentJSON renders v (the result of decoding with UseNumber: map[string]any, []any,
// json.Number, string, bool, nil) as Python's json.dumps(v, indent=2, sort_keys=True) does, so a
// config.json rewritten here is byte-identical to one transformers writes. Numbers keep the literal
// text they were read with (so 1e-05 and 500000.0 survive); float64 values are written with
// pyFloatRepr and ints as integers.
func pyIndentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := pyWrite(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func pyWrite(b *bytes.Buffer, v any, depth int) error {
	ind := func(d int) { b.WriteByte('\n'); b.WriteString(strings.Repeat("  ", d)) }
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(x.String())
	case float64:
		b.WriteString(pyFloatRepr(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case string:
		pyString(b, x)
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			ind(depth + 1)
			if err := pyWrite(b, e, depth+1); err != nil {
				return err
			}
		}
		ind(depth)
		b.WriteByte(']')
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ind(depth + 1)
			pyString(b, k)
			b.WriteString(": ")
			if err := pyWrite(b, x[k], depth+1); err != nil {
				return err
			}
		}
		ind(depth)
		b.WriteByte('}')
	default:
		return fmt.Errorf("python-style JSON: unsupported value of type %T", v)
	}
	return nil
}

// decodeJSONNumbers decodes a JSON document keeping numbers as json.Number.
func decodeJSONNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
