package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ReadOptions control the file readers (ReadJSONL, ReadCSV, ReadParquet, Read).
type ReadOptions struct {
	// SkipBadLines: a malformed line (invalid JSON, not an object, a value of the wrong type for
	// its column, a CSV record with the wrong number of fields) is skipped and recorded in
	// Dataset.Skipped instead of failing the read. Default false: the read fails with an error
	// naming the file and the 1-based line number.
	SkipBadLines bool
	// Columns, when not empty, keeps only these columns (in this order); a missing one is an error.
	Columns []string
	// InferRows is how many leading non-blank JSONL lines decide the schema (default 1000). Keys
	// that first appear after them are ignored.
	InferRows int
	// ChunkRows is the number of rows per Arrow record batch (default 8192).
	ChunkRows int
	// Limit, when > 0, stops after that many rows.
	Limit int
	// Allocator for the Arrow buffers (nil: memory.DefaultAllocator).
	Allocator memory.Allocator
}

func (o *ReadOptions) defaults() {
	if o.InferRows <= 0 {
		o.InferRows = 1000
	}
	if o.ChunkRows <= 0 {
		o.ChunkRows = 8192
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
}

// ReadJSONL reads a JSON Lines file (one JSON object per line; blank lines are ignored) into a
// Dataset, streaming: the file is never held in memory whole. Column types are inferred from the
// first InferRows lines: JSON strings → utf8; integers → int64; other numbers → float64; booleans
// → bool; arrays of integers → list<int32> (list<int64> if a value exceeds int32); arrays of
// strings → list<utf8>; anything else (objects, mixed arrays, conflicting types) → utf8 holding
// the raw JSON text. A key missing from a row is a null. The caller owns the result.
func ReadJSONL(path string, opts ReadOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read jsonl: %w", err)
	}
	defer f.Close()
	return ReadJSONLFrom(f, path, opts)
}

// ReadJSONLFrom is ReadJSONL over any reader; name is used in errors and as the dataset name.
func ReadJSONLFrom(r io.Reader, name string, opts ReadOptions) (*Dataset, error) {
	opts.defaults()
	jr := &jsonlReader{name: name, opts: opts, br: bufio.NewReaderSize(r, 1<<16)}
	return jr.read()
}

// kv is one key/value pair of a JSON object, in file order.
type kv struct {
	key string
	raw json.RawMessage
}

// colKind is the inferred type of a JSONL column.
type colKind int

const (
	kNull colKind = iota // only nulls seen so far
	kString
	kInt
	kFloat
	kBool
	kIntList
	kStringList
	kJSON      // raw JSON text in a utf8 column
	kEmptyList // only empty lists (and nulls) seen so far: becomes list<int32>
)

type jsonlReader struct {
	name    string
	opts    ReadOptions
	br      *bufio.Reader
	line    int
	skipped []BadLine

	keys  []string
	index map[string]int
	kinds []colKind
	big   []bool // int list needs int64

	schema *arrow.Schema
	b      *array.RecordBuilder
	rows   int // rows in the current builder
	total  int
	recs   []arrow.RecordBatch
}

// nextLine returns the next line that is not blank, without its newline, or io.EOF at the end;
// a read error comes back wrapped with the source's name. jr.line counts blank lines too.
func (jr *jsonlReader) nextLine() ([]byte, error) {
	for {
		line, err := jr.br.ReadBytes('\n')
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("read %s: %w", jr.name, err)
		}
		jr.line++
		if line = bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
	}
}

func (jr *jsonlReader) bad(line int, err error) error {
	if jr.opts.SkipBadLines {
		jr.skipped = append(jr.skipped, BadLine{Line: line, Err: err.Error()})
		return nil
	}
	return fmt.Errorf("%s:%d: %w", jr.name, line, err)
}

type pendingLine struct {
	line int
	kvs  []kv
}

func (jr *jsonlReader) read() (ds *Dataset, err error) {
	defer func() {
		if err != nil {
			jr.releaseAll()
		}
	}()
	jr.index = map[string]int{}
	// Phase 1: buffer InferRows parsed lines and infer the schema.
	var pending []pendingLine
	eof := false
	for len(pending) < jr.opts.InferRows {
		raw, rerr := jr.nextLine()
		if errors.Is(rerr, io.EOF) {
			eof = true
			break
		}
		if rerr != nil {
			return nil, rerr
		}
		kvs, perr := parseObject(raw)
		if perr != nil {
			if e := jr.bad(jr.line, perr); e != nil {
				return nil, e
			}
			continue
		}
		jr.observe(kvs)
		pending = append(pending, pendingLine{jr.line, kvs})
	}
	jr.buildSchema()
	if err := jr.checkColumns(); err != nil {
		return nil, err
	}
	jr.b = array.NewRecordBuilder(jr.opts.Allocator, jr.schema)
	defer jr.b.Release()
	for _, p := range pending {
		if jr.limitReached() {
			break
		}
		if aerr := jr.appendRow(p.kvs); aerr != nil {
			// Only a schema mismatch on an inference line can fail here (it cannot: types were
			// widened to fit every inference line), so treat it as a bad line anyway.
			if e := jr.bad(p.line, aerr); e != nil {
				return nil, e
			}
		}
	}
	// Phase 2: stream the rest.
	for !eof && !jr.limitReached() {
		raw, rerr := jr.nextLine()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
		kvs, perr := parseObject(raw)
		if perr == nil {
			perr = jr.appendRow(kvs)
		}
		if perr != nil {
			if e := jr.bad(jr.line, perr); e != nil {
				return nil, e
			}
		}
	}
	jr.flush()
	tbl := array.NewTableFromRecords(jr.schema, jr.recs)
	jr.releaseAll()
	d := NewDataset(jr.name, tbl, jr.opts.Allocator)
	d.skipped = jr.skipped
	if len(jr.opts.Columns) > 0 {
		sel, err := d.Select(jr.opts.Columns...)
		d.Release()
		if err != nil {
			return nil, err
		}
		sel.skipped = jr.skipped
		return sel, nil
	}
	return d, nil
}

func (jr *jsonlReader) limitReached() bool { return jr.opts.Limit > 0 && jr.total >= jr.opts.Limit }

func (jr *jsonlReader) releaseAll() {
	for _, r := range jr.recs {
		r.Release()
	}
	jr.recs = nil
}

func (jr *jsonlReader) checkColumns() error {
	for _, c := range jr.opts.Columns {
		if _, ok := jr.index[c]; !ok {
			return fmt.Errorf("%s: no column %q in the first %d rows (have %v)", jr.name, c, jr.opts.InferRows, jr.keys)
		}
	}
	return nil
}

// parseObject splits one JSON object into its key/value pairs in file order.
func parseObject(line []byte) ([]kv, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object (starts with %v)", tok)
	}
	var out []kv
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		key, ok := kt.(string)
		if !ok {
			return nil, fmt.Errorf("invalid JSON: object key %v", kt)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("invalid JSON in value of %q: %w", key, err)
		}
		out = append(out, kv{key, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid JSON: trailing data after the object")
	}
	return out, nil
}

// kindOf classifies one raw JSON value; big reports an integer list needing int64.
func kindOf(raw json.RawMessage) (k colKind, big bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return kNull, false
	}
	switch raw[0] {
	case 'n':
		return kNull, false
	case '"':
		return kString, false
	case 't', 'f':
		return kBool, false
	case '{':
		return kJSON, false
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return kJSON, false
		}
		allInt, allStr := true, true
		for _, e := range elems {
			e = bytes.TrimSpace(e)
			if _, err := strconv.ParseInt(string(e), 10, 64); err != nil {
				allInt = false
			} else if v, _ := strconv.ParseInt(string(e), 10, 64); v != int64(int32(v)) {
				big = true
			}
			if len(e) == 0 || e[0] != '"' {
				allStr = false
			}
		}
		switch {
		case len(elems) == 0:
			return kEmptyList, false
		case allInt:
			return kIntList, big
		case allStr:
			return kStringList, false
		}
		return kJSON, false
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return kInt, false
	}
	return kFloat, false
}

// merge widens kind a to also hold kind b.
func merge(a, b colKind) colKind {
	switch {
	case a == b || b == kNull:
		return a
	case a == kNull:
		return b
	case (a == kInt && b == kFloat) || (a == kFloat && b == kInt):
		return kFloat
	case a == kEmptyList && (b == kIntList || b == kStringList):
		return b
	case b == kEmptyList && (a == kIntList || a == kStringList):
		return a
	}
	return kJSON
}

func (jr *jsonlReader) observe(kvs []kv) {
	for _, p := range kvs {
		i, ok := jr.index[p.key]
		if !ok {
			i = len(jr.keys)
			jr.index[p.key] = i
			jr.keys = append(jr.keys, p.key)
			jr.kinds = append(jr.kinds, kNull)
			jr.big = append(jr.big, false)
		}
		k, big := kindOf(p.raw)
		jr.kinds[i] = merge(jr.kinds[i], k)
		jr.big[i] = jr.big[i] || big
	}
}

func (jr *jsonlReader) buildSchema() {
	fields := make([]arrow.Field, len(jr.keys))
	for i, k := range jr.keys {
		var t arrow.DataType
		switch jr.kinds[i] {
		case kInt:
			t = arrow.PrimitiveTypes.Int64
		case kFloat:
			t = arrow.PrimitiveTypes.Float64
		case kBool:
			t = arrow.FixedWidthTypes.Boolean
		case kIntList, kEmptyList:
			if jr.big[i] {
				t = arrow.ListOf(arrow.PrimitiveTypes.Int64)
			} else {
				t = arrow.ListOf(arrow.PrimitiveTypes.Int32)
			}
		case kStringList:
			t = arrow.ListOf(arrow.BinaryTypes.String)
		default: // kString, kJSON, kNull
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: k, Type: t, Nullable: true}
	}
	jr.schema = arrow.NewSchema(fields, nil)
}

// appendRow converts one object to builder appends. It validates every value first, so a bad
// row leaves the builders untouched.
func (jr *jsonlReader) appendRow(kvs []kv) error {
	vals := make([]json.RawMessage, len(jr.keys))
	for _, p := range kvs {
		if i, ok := jr.index[p.key]; ok {
			vals[i] = p.raw
		}
	}
	type conv struct {
		s   string
		i   int64
		f   float64
		b   bool
		il  []int64
		sl  []string
		nul bool
	}
	cs := make([]conv, len(vals))
	for i, raw := range vals {
		raw = bytes.TrimSpace(raw)
		c := &cs[i]
		if len(raw) == 0 || string(raw) == "null" {
			c.nul = true
			continue
		}
		kind := jr.kinds[i]
		var err error
		switch kind {
		case kString:
			err = json.Unmarshal(raw, &c.s)
		case kJSON, kNull:
			if raw[0] == '"' && kind == kNull {
				err = json.Unmarshal(raw, &c.s)
			} else {
				c.s = string(raw)
			}
		case kInt:
			c.i, err = strconv.ParseInt(string(raw), 10, 64)
		case kFloat:
			c.f, err = strconv.ParseFloat(string(raw), 64)
		case kBool:
			err = json.Unmarshal(raw, &c.b)
		case kIntList, kEmptyList:
			err = json.Unmarshal(raw, &c.il)
			if err == nil && !jr.big[i] {
				for _, v := range c.il {
					if v != int64(int32(v)) {
						err = fmt.Errorf("value %d does not fit int32", v)
						break
					}
				}
			}
		case kStringList:
			err = json.Unmarshal(raw, &c.sl)
		}
		if err != nil {
			return fmt.Errorf("column %q: value %.40s does not fit type %s: %v", jr.keys[i], raw, jr.schema.Field(i).Type, err)
		}
	}
	for i := range cs {
		fb := jr.b.Field(i)
		c := cs[i]
		if c.nul {
			fb.AppendNull()
			continue
		}
		switch jr.kinds[i] {
		case kString, kJSON, kNull:
			fb.(*array.StringBuilder).Append(c.s)
		case kInt:
			fb.(*array.Int64Builder).Append(c.i)
		case kFloat:
			fb.(*array.Float64Builder).Append(c.f)
		case kBool:
			fb.(*array.BooleanBuilder).Append(c.b)
		case kIntList, kEmptyList:
			lb := fb.(*array.ListBuilder)
			lb.Append(true)
			if jr.big[i] {
				lb.ValueBuilder().(*array.Int64Builder).AppendValues(c.il, nil)
			} else {
				vb := lb.ValueBuilder().(*array.Int32Builder)
				for _, v := range c.il {
					vb.Append(int32(v))
				}
			}
		case kStringList:
			lb := fb.(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.StringBuilder).AppendValues(c.sl, nil)
		}
	}
	jr.rows++
	jr.total++
	if jr.rows >= jr.opts.ChunkRows {
		jr.flush()
	}
	return nil
}

func (jr *jsonlReader) flush() {
	if jr.rows == 0 && len(jr.recs) > 0 {
		return
	}
	jr.recs = append(jr.recs, jr.b.NewRecordBatch())
	jr.rows = 0
}
