package data

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Read reads a dataset file, choosing the format by extension: .jsonl/.json/.ndjson (JSON
// Lines), .parquet/.pq, .csv. The caller owns the result.
func Read(path string, opts ReadOptions) (*Dataset, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".json", ".ndjson":
		return ReadJSONL(path, opts)
	case ".parquet", ".pq":
		return ReadParquet(path, opts)
	case ".csv":
		return ReadCSV(path, opts)
	}
	return nil, fmt.Errorf("read %s: unknown dataset format %q (want .jsonl, .parquet or .csv)", path, filepath.Ext(path))
}

// ReadParquet reads a Parquet file into a Dataset with the file's own Arrow schema. Options used:
// Columns, Limit, Allocator. The caller owns the result.
func ReadParquet(path string, opts ReadOptions) (*Dataset, error) {
	opts.defaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read parquet: %w", err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(opts.Allocator),
		pqarrow.ArrowReadProperties{BatchSize: int64(opts.ChunkRows)}, opts.Allocator)
	if err != nil {
		return nil, fmt.Errorf("read parquet %s: %w", path, err)
	}
	return finishRead(NewDataset(path, tbl, opts.Allocator), opts)
}

// finishRead applies Columns and Limit to a freshly read dataset, releasing it if replaced.
func finishRead(d *Dataset, opts ReadOptions) (*Dataset, error) {
	if len(opts.Columns) > 0 {
		s, err := d.Select(opts.Columns...)
		d.Release()
		if err != nil {
			return nil, err
		}
		d = s
	}
	if opts.Limit > 0 && opts.Limit < d.NumRows() {
		s, err := d.Slice(0, opts.Limit)
		d.Release()
		if err != nil {
			return nil, err
		}
		d = s
	}
	return d, nil
}

// ReadCSV reads a CSV file whose first record is the header. Every column is utf8 (no type
// guessing, so a target like "3.0" stays "3.0"). A record with the wrong number of fields is an
// error naming the line (or skipped with SkipBadLines). The caller owns the result.
func ReadCSV(path string, opts ReadOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read csv: %w", err)
	}
	defer f.Close()
	return ReadCSVFrom(f, path, opts)
}

// ReadCSVFrom is ReadCSV over any reader; name is used in errors and as the dataset name.
func ReadCSVFrom(r io.Reader, name string, opts ReadOptions) (*Dataset, error) {
	opts.defaults()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked here, so the line number is ours to report
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read csv %s: header: %w", name, err)
	}
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(opts.Allocator, schema)
	defer b.Release()
	var recs []arrow.RecordBatch
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	var skipped []BadLine
	rows, total := 0, 0
	for opts.Limit <= 0 || total < opts.Limit {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err == nil && len(rec) != len(header) {
			err = fmt.Errorf("record has %d fields, header has %d", len(rec), len(header))
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
				err = pe.Err
			}
			if !opts.SkipBadLines {
				release()
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			skipped = append(skipped, BadLine{Line: line, Err: err.Error()})
			continue
		}
		for i, v := range rec {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
		rows++
		total++
		if rows >= opts.ChunkRows {
			recs = append(recs, b.NewRecordBatch())
			rows = 0
		}
	}
	if rows > 0 || len(recs) == 0 {
		recs = append(recs, b.NewRecordBatch())
	}
	tbl := array.NewTableFromRecords(schema, recs)
	release()
	d := NewDataset(name, tbl, opts.Allocator)
	d.skipped = skipped
	opts.Limit = 0
	return finishRead(d, opts)
}

// WriteParquet writes the dataset to a Parquet file (Snappy-free default properties, row groups of
// at most 64k rows).
func (d *Dataset) WriteParquet(path string) error {
	d.check()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	// pqarrow closes a sink that is an io.Closer; hide Close so the error of ours is the one seen.
	sink := struct{ io.Writer }{f}
	if err := pqarrow.WriteTable(d.tbl, sink, 64*1024, parquet.NewWriterProperties(parquet.WithAllocator(d.mem)),
		pqarrow.DefaultWriterProps()); err != nil {
		f.Close()
		return fmt.Errorf("write parquet %s: %w", path, err)
	}
	return f.Close()
}

// WriteCSV writes the dataset as CSV with a header line (values in Arrow's string form).
func (d *Dataset) WriteCSV(path string) error {
	d.check()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	w := arrowcsv.NewWriter(f, d.tbl.Schema(), arrowcsv.WithHeader(true))
	tr := array.NewTableReader(d.tbl, 8192)
	defer tr.Release()
	for tr.Next() {
		if err := w.Write(tr.RecordBatch()); err != nil {
			f.Close()
			return fmt.Errorf("write csv %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write csv %s: %w", path, err)
	}
	return f.Close()
}
