package experiment

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/finlora/finlora/runtime/data"
)

// Row is one FinLoRA {context, target} row, with its task and its line index in the task's file.
type Row struct {
	Task    string
	Index   int // 0-based line index in the task file
	Context string
	Target  string
}

// InputText is the part of a FinLoRA prompt between "Input:" and the last "Answer:" (trimmed), or
// the whole prompt when it has no "Input:": the text a row is about, the unit the split keeps on
// one side.
func InputText(context string) string {
	s := context
	if i := strings.Index(s, "Input:"); i >= 0 {
		s = s[i+len("Input:"):]
	}
	if i := strings.LastIndex(s, "Answer:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// ReadRows reads a FinLoRA JSONL task file (one {"context", "target"} object per line).
func ReadRows(path, task string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var rows []Row
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r struct{ Context, Target string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("experiment: %s:%d: %w", path, line, err)
		}
		if r.Context == "" || r.Target == "" {
			return nil, fmt.Errorf("experiment: %s:%d: want non-empty context and target", path, line)
		}
		rows = append(rows, Row{Task: task, Index: len(rows), Context: r.Context, Target: r.Target})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("experiment: read %s: %w", path, err)
	}
	return rows, nil
}

// Splits are the evaluation rows per task and the training rows of the experiment.
type Splits struct {
	Eval  map[string][]Row // task → evaluated rows (in the seeded group order)
	Train []Row            // training rows, shuffled (sentiment and NER mixed)
	// Pool is, per training task, how many rows were available after removing the evaluation
	// groups and any row whose input text is evaluated somewhere.
	Pool map[string]int
	Rule string // the split rule in words, with seeds and sizes
}

// trainTasks are the tasks whose files also give training rows (FPB and FiQA are held out entirely).
var trainTasks = []string{"tfns", "nwgi", "ner"}

// MakeSplits reads the tasks' test files from dataDir and splits them (see the package doc). Task
// i of tasks (and of tfns, nwgi, ner when they are not evaluated) is permuted with seed+i.
func MakeSplits(dataDir string, tasks []string, evalLimit, trainSentiment, trainNER int, seed uint64) (*Splits, error) {
	s := &Splits{Eval: map[string][]Row{}, Pool: map[string]int{}}
	all := append([]string(nil), tasks...)
	for _, t := range trainTasks {
		if !contains(all, t) {
			all = append(all, t)
		}
	}
	orders := map[string][][]Row{} // task → groups in seeded order
	for i, task := range all {
		rows, err := ReadRows(filepath.Join(dataDir, task+"_test.jsonl"), task)
		if err != nil {
			if !contains(tasks, task) && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		groups, keys := map[string][]Row{}, []string{}
		for _, r := range rows {
			k := InputText(r.Context)
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], r)
		}
		perm := data.Permutation(len(keys), seed+uint64(i))
		ordered := make([][]Row, len(keys))
		for j, p := range perm {
			ordered[j] = groups[keys[p]]
		}
		orders[task] = ordered
	}
	evalInputs := map[string]bool{}
	taken := map[string]int{} // task → groups taken for evaluation
	for _, task := range tasks {
		for _, g := range orders[task] {
			if evalLimit > 0 && len(s.Eval[task]) >= evalLimit {
				break
			}
			room := len(g)
			if evalLimit > 0 {
				room = min(room, evalLimit-len(s.Eval[task]))
			}
			s.Eval[task] = append(s.Eval[task], g[:room]...)
			evalInputs[InputText(g[0].Context)] = true
			taken[task]++
		}
	}
	pools := map[string][]Row{}
	for _, task := range trainTasks {
		for _, g := range orders[task][taken[task]:] {
			if evalInputs[InputText(g[0].Context)] {
				continue
			}
			pools[task] = append(pools[task], g...)
		}
		s.Pool[task] = len(pools[task])
	}
	var sent []Row
	for i := 0; len(sent) < trainSentiment && i < len(pools["tfns"])+len(pools["nwgi"]); i++ {
		for _, t := range []string{"tfns", "nwgi"} {
			if i < len(pools[t]) && len(sent) < trainSentiment {
				sent = append(sent, pools[t][i])
			}
		}
	}
	ner := pools["ner"][:min(trainNER, len(pools["ner"]))]
	train := append(append([]Row(nil), sent...), ner...)
	perm := data.Permutation(len(train), seed+1000)
	s.Train = make([]Row, len(train))
	for i, p := range perm {
		s.Train[i] = train[p]
	}
	var sizes []string
	for _, task := range tasks {
		sizes = append(sizes, fmt.Sprintf("%s %d", task, len(s.Eval[task])))
	}
	s.Rule = fmt.Sprintf("Rows are grouped by input text (between \"Input:\" and \"Answer:\"); each task file's groups are "+
		"permuted with data.Permutation(groups, seed %d + task index) and taken in order as evaluation rows up to %d per task "+
		"(%s). Training rows come only from TFNS, NWGI and NER groups not taken for evaluation, with no input text evaluated "+
		"anywhere (pools: tfns %d, nwgi %d, ner %d rows): %d sentiment rows (TFNS and NWGI alternating) and %d NER rows, "+
		"shuffled together with seed %d; FPB and FiQA are never trained on.",
		seed, evalLimit, strings.Join(sizes, ", "), s.Pool["tfns"], s.Pool["nwgi"], s.Pool["ner"], len(sent), len(ner), seed+1000)
	return s, nil
}

// Check verifies the split's promise: no training row shares an input text with an evaluated row.
func (s *Splits) Check() error {
	ev := map[string]string{}
	for task, rows := range s.Eval {
		for _, r := range rows {
			ev[InputText(r.Context)] = fmt.Sprintf("%s row %d", task, r.Index)
		}
	}
	for _, r := range s.Train {
		if w, ok := ev[InputText(r.Context)]; ok {
			return fmt.Errorf("experiment: training row %s %d has the input text of evaluated %s", r.Task, r.Index, w)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// FindDataDir returns FinLoRA's test folder: override when non-empty, else $FINLORA_DATA_DIR, else
// the first of shared/data/finlora/test and ../shared/data/finlora/test found from the working
// directory or one of its parents (CI keeps ../shared beside the clone), else /work/shared/....
func FindDataDir(override string) (string, error) {
	check := func(d string) bool {
		st, err := os.Stat(filepath.Join(d, "fpb_test.jsonl"))
		return err == nil && st.Mode().IsRegular()
	}
	for _, d := range []string{override, os.Getenv("FINLORA_DATA_DIR")} {
		if d != "" {
			if !check(d) {
				return "", fmt.Errorf("experiment: FinLoRA test folder %s has no fpb_test.jsonl", d)
			}
			return d, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, rel := range []string{"shared/data/finlora/test", "../shared/data/finlora/test"} {
			if p := filepath.Join(d, rel); check(p) {
				return p, nil
			}
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if p := "/work/shared/data/finlora/test"; check(p) {
		return p, nil
	}
	return "", fmt.Errorf("experiment: FinLoRA test files not found from %s (looked for ../shared/data/finlora/test upwards); set FINLORA_DATA_DIR or pass the folder", wd)
}
