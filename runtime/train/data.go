package train

import (
	"fmt"

	"github.com/finlora/finlora/runtime/data"
)

// ReadExamples reads a training file (JSONL, Parquet or CSV, by runtime/data.Read) of either
// FinLoRA's {context, target} rows, tokenized with tok (prompt masked with −100, EOS appended; tok
// may be nil for pre-tokenized files), or {input_ids, labels} rows used as given (labels default to
// input_ids). maxLength > 0 truncates rows of prompts.
func ReadExamples(path string, tok data.Tokenizer, maxLength int) ([]Example, error) {
	ds, err := data.Read(path, data.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer ds.Release()
	switch ds.Kind() {
	case data.KindTokenized:
		ex, err := ds.Examples()
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		return ex, nil
	case data.KindPrompt:
		if tok == nil {
			return nil, fmt.Errorf("train: %s holds {context, target} rows but no tokenizer was given", path)
		}
		td, err := ds.Tokenize(tok, data.TokenizeOptions{MaxLength: maxLength})
		if err != nil {
			return nil, fmt.Errorf("train: tokenize %s: %w", path, err)
		}
		defer td.Release()
		ex, err := td.Examples()
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		return ex, nil
	}
	return nil, fmt.Errorf("train: %s: rows must be {context, target} or {input_ids, labels}; columns are %v", path, ds.ColumnNames())
}
