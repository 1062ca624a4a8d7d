// Package experiment runs the miniature FinLoRA experiment on a real pretrained model (Gemma 3 270M
// or SmolLM2-135M from their GGUF files, or any Hugging Face directory of the Llama family):
// evaluate the base zero-shot on FinLoRA's FPB, FiQA, TFNS, NWGI and NER test files, train one LoRA
// adapter per rank on training rows that never share an input text with an evaluated row, evaluate
// each adapter on the same rows, and report one table (task, base and adapter accuracy/F1, training
// time, memory).
//
// The split rule (Splits): rows are grouped by their input text (the part of the prompt between
// "Input:" and "Answer:"), so the several phrasings FinLoRA's NER file has for one sentence stay on
// one side. For each task the groups are permuted with data.Permutation(groups, seed+task index)
// and taken in that order as evaluation rows until EvalLimit rows are reached. FPB and FiQA are
// evaluation only. The training pool is the TFNS and NWGI groups not taken for evaluation
// (sentiment) and the NER groups not taken (NER), minus any row whose input text is also the input
// of an evaluated row of any task; TrainSentiment rows (alternating TFNS and NWGI in pool order)
// and TrainNER rows are taken from the pools' seeded orders and shuffled together: one multi-task
// adapter per rank.
//
// The CLI is `finlora experiment`; notebooks/02-finlora-gemma3.ipynb calls Run step by step.
package experiment
