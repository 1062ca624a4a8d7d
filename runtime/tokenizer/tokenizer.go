// Package tokenizer turns text into token ids and back for the models the runtime loads: the
// byte-level BPE of Hugging Face tokenizer.json files (Llama 3, Qwen2/3, Mistral's newer vocabularies)
// is implemented here (BPE, LoadDir); other packages implement Tokenizer for other vocabularies (e.g.
// the SentencePiece-style vocabularies of GGUF files).
package tokenizer

// Tokenizer is the interface every tokenizer of the runtime satisfies. Implementations are safe for
// concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text. With addSpecial, the tokens the model's post-processor adds
	// (e.g. Llama 3's <|begin_of_text|>) are added; special tokens written in text are always
	// recognized as such. Any byte string is accepted (invalid UTF-8 included); never panics.
	Encode(text string, addSpecial bool) []int
	// Decode returns the text of ids; with skipSpecial, special tokens are left out. Unknown ids are
	// skipped.
	Decode(ids []int, skipSpecial bool) string
	// VocabSize is the number of ids (the largest id + 1, added tokens included).
	VocabSize() int
	// TokenID returns the id of a token as spelled in the vocabulary (byte-level form for BPE).
	TokenID(token string) (int, bool)
	// BOS is the beginning-of-sequence id, or -1 if the model has none.
	BOS() int
	// EOS returns the ids that end generation (several for chat models); may be empty.
	EOS() []int
	// Pad is the padding id, or -1 if none is configured.
	Pad() int
}
