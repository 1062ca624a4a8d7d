package train

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// MetricsSchema is the schema of the metrics log: one row per optimizer step.
var MetricsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "step", Type: arrow.PrimitiveTypes.Int64},
	{Name: "epoch", Type: arrow.PrimitiveTypes.Int64},
	{Name: "loss", Type: arrow.PrimitiveTypes.Float64},
	{Name: "lr", Type: arrow.PrimitiveTypes.Float64},
	{Name: "grad_norm", Type: arrow.PrimitiveTypes.Float64},
	{Name: "tokens", Type: arrow.PrimitiveTypes.Int64},
	{Name: "tokens_per_sec", Type: arrow.PrimitiveTypes.Float64},
	{Name: "step_seconds", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// MetricsRecord returns the metrics as one Arrow record batch of MetricsSchema; the caller
// Releases it.
func MetricsRecord(ms []StepMetrics) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, MetricsSchema)
	defer b.Release()
	for _, m := range ms {
		b.Field(0).(*array.Int64Builder).Append(int64(m.Step))
		b.Field(1).(*array.Int64Builder).Append(int64(m.Epoch))
		b.Field(2).(*array.Float64Builder).Append(m.Loss)
		b.Field(3).(*array.Float64Builder).Append(m.LR)
		b.Field(4).(*array.Float64Builder).Append(m.GradNorm)
		b.Field(5).(*array.Int64Builder).Append(int64(m.Tokens))
		b.Field(6).(*array.Float64Builder).Append(m.TokensPerSec)
		b.Field(7).(*array.Float64Builder).Append(m.Duration.Seconds())
	}
	return b.NewRecordBatch()
}

// MetricsTable returns the metrics as an Arrow table of MetricsSchema; the caller Releases it.
func MetricsTable(ms []StepMetrics) arrow.Table {
	rec := MetricsRecord(ms)
	defer rec.Release()
	return array.NewTableFromRecords(MetricsSchema, []arrow.RecordBatch{rec})
}

// WriteMetrics writes the metrics log to path: Parquet when the name ends in ".parquet", else an
// Arrow IPC file. The file is written to a temporary name and renamed into place.
func WriteMetrics(path string, ms []StepMetrics) error {
	rec := MetricsRecord(ms)
	defer rec.Release()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: write metrics: %w", err)
	}
	defer os.Remove(tmp.Name())
	if strings.HasSuffix(path, ".parquet") {
		tbl := array.NewTableFromRecords(MetricsSchema, []arrow.RecordBatch{rec})
		defer tbl.Release()
		var buf bytes.Buffer // WriteTable closes its sink: write to memory, then to the file
		if err = pqarrow.WriteTable(tbl, &buf, 1024, nil, pqarrow.DefaultWriterProps()); err == nil {
			_, err = tmp.Write(buf.Bytes())
		}
	} else {
		var w *ipc.FileWriter
		if w, err = ipc.NewFileWriter(tmp, ipc.WithSchema(MetricsSchema)); err == nil {
			if err = w.Write(rec); err == nil {
				err = w.Close()
			}
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("train: write metrics %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("train: write metrics: %w", err)
	}
	return nil
}
