package data

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/finlora/finlora/runtime/tokenizer"
)

// The runtime's tokenizers satisfy the local interface.
var _ Tokenizer = tokenizer.Tokenizer(nil)

// byteTok is a test tokenizer: one id per byte (byte+3), BOS=1, EOS=2.
type byteTok struct{}

func (byteTok) Encode(text string, addSpecial bool) []int {
	var out []int
	if addSpecial {
		out = append(out, 1)
	}
	for _, b := range []byte(text) {
		out = append(out, int(b)+3)
	}
	return out
}
func (byteTok) EOS() []int { return []int{2} }

var fixtures = []string{"fpb", "ner", "nwgi", "formula", "xbrl_term"}

// readRef decodes a JSONL file with encoding/json, independently of the reader under test.
func readRef(t *testing.T, path string) (ctx, tgt []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var row struct{ Context, Target string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		ctx, tgt = append(ctx, row.Context), append(tgt, row.Target)
	}
	return ctx, tgt
}

func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func TestReadJSONLFixtures(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			mem := checked(t)
			path := filepath.Join("testdata", name+"_40.jsonl")
			wantC, wantT := readRef(t, path)
			d, err := ReadJSONL(path, ReadOptions{Allocator: mem, ChunkRows: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Release()
			if d.NumRows() != len(wantC) || d.NumRows() != 40 {
				t.Fatalf("rows = %d, want %d", d.NumRows(), len(wantC))
			}
			if d.Kind() != KindPrompt {
				t.Fatalf("kind = %v", d.Kind())
			}
			if got := d.ColumnNames(); !reflect.DeepEqual(got, []string{"context", "target"}) {
				t.Fatalf("columns = %v", got)
			}
			gotC, _ := d.Strings(ColContext)
			gotT, _ := d.Strings(ColTarget)
			if !reflect.DeepEqual(gotC, wantC) || !reflect.DeepEqual(gotT, wantT) {
				t.Fatal("values differ from encoding/json's")
			}
			if n := len(d.Table().Column(0).Data().Chunks()); n != 3 {
				t.Errorf("chunks = %d, want 3 (40 rows in chunks of 16)", n)
			}
		})
	}
}

func TestReadJSONLMalformed(t *testing.T) {
	dir := t.TempDir()
	lines := []string{
		`{"context": "a", "target": "x"}`,
		``,
		`{"context": "b", "target": "y"}`,
		`{"context": "c", "target": `,   // line 4: truncated JSON
		`["not", "an", "object"]`,       // line 5
		`{"context": "d", "target": 7}`, // line 6: a number where strings were inferred
		`{"context": "e", "target": "z"}`,
	}
	path := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := checked(t)
	// When line 6 is among the inference lines, the target column widens to raw JSON text and
	// line 6 is accepted (target "7"); when it comes after, it is a type error.
	cases := []struct {
		name      string
		inferRows int
		contexts  []string
		bad       []int
	}{
		{"inferring-all", 0, []string{"a", "b", "d", "e"}, []int{4, 5}},
		{"streaming-after-2", 2, []string{"a", "b", "e"}, []int{4, 5, 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadJSONL(path, ReadOptions{Allocator: mem, InferRows: c.inferRows})
			if err == nil || !strings.Contains(err.Error(), path+":4:") {
				t.Fatalf("err = %v, want one naming %s:4", err, path)
			}
			d, err := ReadJSONL(path, ReadOptions{Allocator: mem, InferRows: c.inferRows, SkipBadLines: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Release()
			got, _ := d.Strings(ColContext)
			if !reflect.DeepEqual(got, c.contexts) {
				t.Fatalf("contexts = %v", got)
			}
			var bad []int
			for _, b := range d.Skipped() {
				bad = append(bad, b.Line)
			}
			if !reflect.DeepEqual(bad, c.bad) {
				t.Fatalf("skipped lines = %v (%v)", bad, d.Skipped())
			}
		})
	}
}

func TestReadJSONLTokenizedAndTypes(t *testing.T) {
	mem := checked(t)
	src := `{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "score": 1, "w": 0.5, "ok": true, "tags": ["a"], "meta": {"k": 1}}
{"input_ids": [8, 9], "labels": [-100, 9], "score": 2.5, "w": null, "ok": false, "tags": [], "meta": [1, "x"]}
`
	d, err := ReadJSONLFrom(strings.NewReader(src), "mem", ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	if d.Kind() != KindTokenized {
		t.Fatalf("kind = %v", d.Kind())
	}
	want := map[string]string{
		"input_ids": "list<item: int32, nullable>", "labels": "list<item: int32, nullable>",
		"score": "float64", "w": "float64", "ok": "bool", "tags": "list<item: utf8, nullable>", "meta": "utf8",
	}
	for _, f := range d.Schema().Fields() {
		if want[f.Name] != f.Type.String() {
			t.Errorf("column %s: type %s, want %s", f.Name, f.Type, want[f.Name])
		}
	}
	ex, err := d.Examples()
	if err != nil {
		t.Fatal(err)
	}
	wantEx := []Example{{[]int32{5, 6, 7}, []int32{-100, 6, 7}}, {[]int32{8, 9}, []int32{-100, 9}}}
	if !reflect.DeepEqual(ex, wantEx) {
		t.Fatalf("examples = %v", ex)
	}
	meta, _ := d.Strings("meta")
	if meta[0] != `{"k": 1}` || meta[1] != `[1, "x"]` {
		t.Fatalf("raw JSON column = %q", meta)
	}
}

func TestTokenize(t *testing.T) {
	mem := checked(t)
	d, err := ReadJSONL("testdata/fpb_40.jsonl", ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	one, err := d.Tokenize(byteTok{}, TokenizeOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Release()
	many, err := d.Tokenize(byteTok{}, TokenizeOptions{Workers: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer many.Release()
	ex1, _ := one.Examples()
	exN, _ := many.Examples()
	if !reflect.DeepEqual(ex1, exN) {
		t.Fatal("parallel tokenizing differs from one worker")
	}
	ctx, _ := d.Strings(ColContext)
	tgt, _ := d.Strings(ColTarget)
	lengths, _ := one.Int64s(ColLength)
	for i, e := range ex1 {
		nc := 1 + len(ctx[i])
		if len(e.InputIDs) != nc+len(tgt[i])+1 || int(lengths[i]) != len(e.InputIDs) {
			t.Fatalf("row %d: %d ids, length %d, want %d", i, len(e.InputIDs), lengths[i], nc+len(tgt[i])+1)
		}
		for k := 0; k < nc; k++ {
			if e.Labels[k] != IgnoreIndex {
				t.Fatalf("row %d: prompt label %d = %d, want -100", i, k, e.Labels[k])
			}
		}
		for k := nc; k < len(e.Labels); k++ {
			if e.Labels[k] != e.InputIDs[k] {
				t.Fatalf("row %d: answer label %d = %d, want %d", i, k, e.Labels[k], e.InputIDs[k])
			}
		}
		if e.InputIDs[0] != 1 || e.InputIDs[len(e.InputIDs)-1] != 2 {
			t.Fatalf("row %d: want BOS first and EOS last", i)
		}
	}
	if got := one.ColumnNames(); !reflect.DeepEqual(got, []string{"context", "target", "input_ids", "labels", "length"}) {
		t.Fatalf("columns = %v", got)
	}
	short, _ := d.Tokenize(byteTok{}, TokenizeOptions{MaxLength: 20, NoEOS: true})
	defer short.Release()
	exS, _ := short.Examples()
	for i, e := range exS {
		if len(e.InputIDs) != 20 {
			t.Fatalf("row %d: truncated length %d", i, len(e.InputIDs))
		}
	}
}

func TestParquetRoundTrip(t *testing.T) {
	mem := checked(t)
	d, err := ReadJSONL("testdata/nwgi_40.jsonl", ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	tok, err := d.Tokenize(byteTok{}, TokenizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Release()
	path := filepath.Join(t.TempDir(), "nwgi.parquet")
	if err := tok.WriteParquet(path); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path, ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	// Parquet renames list items "element" and adds field ids: compare names and type ids.
	if !reflect.DeepEqual(back.ColumnNames(), tok.ColumnNames()) {
		t.Fatalf("columns %v, want %v", back.ColumnNames(), tok.ColumnNames())
	}
	for i, f := range back.Schema().Fields() {
		if w := tok.Schema().Field(i).Type; f.Type.ID() != w.ID() || (elemType(w) != nil && elemType(f.Type).ID() != elemType(w).ID()) {
			t.Fatalf("column %s: type %s, want %s", f.Name, f.Type, w)
		}
	}
	for _, c := range []string{ColContext, ColTarget} {
		a, _ := tok.Strings(c)
		b, _ := back.Strings(c)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("column %s differs after the round trip", c)
		}
	}
	ea, _ := tok.Examples()
	eb, _ := back.Examples()
	if !reflect.DeepEqual(ea, eb) {
		t.Fatal("input_ids/labels differ after the round trip")
	}
	lim, err := ReadParquet(path, ReadOptions{Allocator: mem, Limit: 7, Columns: []string{ColTarget}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Release()
	if lim.NumRows() != 7 || !reflect.DeepEqual(lim.ColumnNames(), []string{ColTarget}) {
		t.Fatalf("limited read: %d rows, columns %v", lim.NumRows(), lim.ColumnNames())
	}
}

func TestCSVRoundTrip(t *testing.T) {
	mem := checked(t)
	ctx := []string{"plain", "with, comma", "with \"quotes\"", "multi\nline", ""}
	tgt := []string{"3.0", "positive", "neutral", "x,y", "15092.44"}
	d, err := FromPrompts("mem", ctx, tgt, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := d.WriteCSV(path); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path, ReadOptions{Allocator: mem, ChunkRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	gc, _ := back.Strings(ColContext)
	gt, _ := back.Strings(ColTarget)
	if !reflect.DeepEqual(gc, ctx) || !reflect.DeepEqual(gt, tgt) {
		t.Fatalf("round trip: %q %q", gc, gt)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("context,target\na,b\nc\nd,e\n"), 0o644)
	if _, err := ReadCSV(bad, ReadOptions{Allocator: mem}); err == nil || !strings.Contains(err.Error(), bad+":3:") {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
	sk, err := ReadCSV(bad, ReadOptions{Allocator: mem, SkipBadLines: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Release()
	if sk.NumRows() != 2 || len(sk.Skipped()) != 1 || sk.Skipped()[0].Line != 3 {
		t.Fatalf("skip: %d rows, skipped %v", sk.NumRows(), sk.Skipped())
	}
}

func TestSplit(t *testing.T) {
	mem := checked(t)
	d, err := ReadJSONL("testdata/ner_40.jsonl", ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	ctx, _ := d.Strings(ColContext)
	for _, frac := range []float64{0, 0.1, 0.25, 0.5, 1} {
		trIdx, teIdx, err := SplitIndices(40, frac, 42)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for _, i := range append(append([]int(nil), trIdx...), teIdx...) {
			seen[i]++
		}
		if len(seen) != 40 || len(teIdx) != int(frac*40+0.5) {
			t.Fatalf("frac %v: %d distinct rows, %d test", frac, len(seen), len(teIdx))
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("frac %v: row %d appears %d times", frac, i, c)
			}
		}
	}
	tr, te, err := d.Split(0.25, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release()
	defer te.Release()
	_, teIdx, _ := SplitIndices(40, 0.25, 7)
	got, _ := te.Strings(ColContext)
	for k, i := range teIdx {
		if got[k] != ctx[i] {
			t.Fatalf("test row %d is not source row %d", k, i)
		}
	}
	if tr.NumRows() != 30 || te.NumRows() != 10 {
		t.Fatalf("sizes %d/%d", tr.NumRows(), te.NumRows())
	}
	_, again, _ := SplitIndices(40, 0.25, 7)
	_, other, _ := SplitIndices(40, 0.25, 8)
	if !reflect.DeepEqual(again, teIdx) || reflect.DeepEqual(other, teIdx) {
		t.Fatal("split is not deterministic in its seed")
	}
	if _, _, err := d.Split(1.5, 1); err == nil {
		t.Fatal("want an error for a fraction > 1")
	}
}

func TestBatches(t *testing.T) {
	ex := []Example{}
	for i, n := range []int{5, 1, 9, 3, 7, 2, 8} {
		e := Example{}
		for k := 0; k < n; k++ {
			e.InputIDs = append(e.InputIDs, int32(10*i+k+1))
			l := int32(IgnoreIndex)
			if k == n-1 {
				l = e.InputIDs[k]
			}
			e.Labels = append(e.Labels, l)
		}
		ex = append(ex, e)
	}
	padding := func(bs []Batch) int {
		p := 0
		for _, b := range bs {
			p += b.Size()*b.Width() - b.Tokens()
		}
		return p
	}
	for _, left := range []bool{false, true} {
		for _, group := range []bool{false, true} {
			for _, shuffle := range []bool{false, true} {
				name := fmt.Sprintf("left=%v/group=%v/shuffle=%v", left, group, shuffle)
				bs, err := MakeBatches(ex, BatchOptions{BatchSize: 3, PadID: 0, PadLeft: left, GroupByLength: group, Shuffle: shuffle, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				seen := map[int]bool{}
				for _, b := range bs {
					for i, r := range b.Rows {
						if seen[r] {
							t.Fatalf("%s: row %d twice", name, r)
						}
						seen[r] = true
						n := len(ex[r].InputIDs)
						off := 0
						if left {
							off = b.Width() - n
						}
						if b.Lengths[i] != n {
							t.Fatalf("%s: length %d, want %d", name, b.Lengths[i], n)
						}
						for t2 := 0; t2 < b.Width(); t2++ {
							real := t2 >= off && t2 < off+n
							switch {
							case real && (b.InputIDs[i][t2] != ex[r].InputIDs[t2-off] || b.Labels[i][t2] != ex[r].Labels[t2-off] || b.AttentionMask[i][t2] != 1):
								t.Fatalf("%s: row %d token %d wrong", name, r, t2)
							case !real && (b.InputIDs[i][t2] != 0 || b.Labels[i][t2] != IgnoreIndex || b.AttentionMask[i][t2] != 0):
								t.Fatalf("%s: row %d pad %d wrong", name, r, t2)
							}
						}
					}
				}
				if len(seen) != len(ex) {
					t.Fatalf("%s: %d rows batched of %d", name, len(seen), len(ex))
				}
			}
		}
	}
	plain, _ := MakeBatches(ex, BatchOptions{BatchSize: 3})
	grouped, _ := MakeBatches(ex, BatchOptions{BatchSize: 3, GroupByLength: true})
	if padding(grouped) >= padding(plain) {
		t.Fatalf("grouping by length did not reduce padding: %d vs %d", padding(grouped), padding(plain))
	}
	dropped, _ := MakeBatches(ex, BatchOptions{BatchSize: 3, DropLast: true})
	if len(dropped) != 2 || len(plain) != 3 {
		t.Fatalf("drop last: %d batches (plain %d)", len(dropped), len(plain))
	}
	if _, err := MakeBatches(ex, BatchOptions{}); err == nil {
		t.Fatal("want an error for batch size 0")
	}
}

func TestViewAndSelect(t *testing.T) {
	mem := checked(t)
	long := strings.Repeat("é", ViewMaxChars+50)
	d, err := FromPrompts("demo<&>", []string{"<script>alert(1)</script>", long}, []string{"a&b", "x"}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	h := d.HTML()
	for _, want := range []string{"demo&lt;&amp;&gt;", "2 rows", "&lt;script&gt;alert(1)&lt;/script&gt;", "a&amp;b", "context: utf8", strings.Repeat("é", ViewMaxChars) + "…"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(h, "<script>") || strings.Contains(h, strings.Repeat("é", ViewMaxChars+1)) {
		t.Error("HTML has an unescaped or untruncated value")
	}
	s := d.String()
	if !strings.Contains(s, "Dataset demo<&>: 2 rows") || !strings.Contains(s, "target: a&b") {
		t.Errorf("String() = %s", s)
	}
	sel, err := d.Select(ColTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Release()
	sl, err := d.Slice(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Release()
	if got, _ := sl.Strings(ColTarget); !reflect.DeepEqual(got, []string{"x"}) {
		t.Fatalf("slice = %v", got)
	}
	tok, _ := d.Tokenize(byteTok{}, TokenizeOptions{})
	defer tok.Release()
	if !strings.Contains(tok.HTML(), "(n=") {
		t.Error("HTML of a long token list lacks its length")
	}
	d2, _ := FromPrompts("x", []string{"a"}, []string{"b"}, mem)
	d2.Release()
	d2.Free() // a second release is a no-op
	if d2.String() != "Dataset(released)" {
		t.Error("released dataset String")
	}
}

// TestReadSharedFinLoRA reads every FinLoRA task file of ../shared (row counts from its README)
// when that folder is there (CI has it; a bare clone skips).
func TestReadSharedFinLoRA(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "finlora", "test")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI without ../shared: %v", err)
		}
		t.Skip("no ../shared/data/finlora")
	}
	want := map[string]int{"fpb": 1212, "fiqa": 235, "tfns": 2388, "nwgi": 4047, "ner": 3502, "xbrl_term": 651, "formula": 200, "financebench": 43}
	for name, rows := range want {
		mem := checked(t)
		d, err := ReadJSONL(filepath.Join(dir, name+"_test.jsonl"), ReadOptions{Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		if d.NumRows() != rows || d.Kind() != KindPrompt || len(d.Skipped()) != 0 {
			t.Errorf("%s: %d rows (want %d), kind %v", name, d.NumRows(), rows, d.Kind())
		}
		d.Release()
	}
}

// wordTok merges "ab" into one id, so joint and separate encodings differ at an a|b boundary.
type wordTok struct{}

func (wordTok) Encode(text string, addSpecial bool) []int {
	var out []int
	for i := 0; i < len(text); i++ {
		if i+1 < len(text) && text[i] == 'a' && text[i+1] == 'b' {
			out = append(out, 1000)
			i++
			continue
		}
		out = append(out, int(text[i]))
	}
	return out
}
func (wordTok) EOS() []int { return nil }

func TestEncodeJoint(t *testing.T) {
	ids, lab := EncodeExample(wordTok{}, "xa", "bc", false, -1, 0)
	if !reflect.DeepEqual(ids, []int32{'x', 'a', 'b', 'c'}) || !reflect.DeepEqual(lab, []int32{-100, -100, 'b', 'c'}) {
		t.Fatalf("separate: %v %v", ids, lab)
	}
	ids, lab = EncodeJoint(wordTok{}, "xa", "bc", false, 9, 0)
	// joint "xabc" = x, ab, c, eos; the context has 2 tokens, so the first 2 labels are masked.
	if !reflect.DeepEqual(ids, []int32{'x', 1000, 'c', 9}) || !reflect.DeepEqual(lab, []int32{-100, -100, 'c', 9}) {
		t.Fatalf("joint: %v %v", ids, lab)
	}
	mem := checked(t)
	d, _ := FromPrompts("j", []string{"xa"}, []string{"bc"}, mem)
	defer d.Release()
	j, err := d.Tokenize(wordTok{}, TokenizeOptions{Joint: true, MaxLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Release()
	ex, _ := j.Examples()
	if !reflect.DeepEqual(ex[0], Example{[]int32{'x', 1000}, []int32{-100, -100}}) {
		t.Fatalf("dataset joint: %v", ex[0])
	}
}
