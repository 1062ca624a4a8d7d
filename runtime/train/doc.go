// Package train finetunes LoRA adapters of a Llama-family decoder: the training forward and its
// hand-written backward (gradients for adapter weights only, the base frozen), HF's masked
// next-token cross-entropy, AdamW with PyTorch semantics, transformers' LR schedules, gradient
// accumulation and clipping, seeded LoRA dropout, atomic checkpoints that resume to the identical
// next step, and a metrics log as an Arrow table.
//
// Vocabulary: a "step" is one optimizer step; a "micro-batch" is one forward/backward of
// BatchSize rows; GradAccum micro-batches make one step.
//
// Use: wrap a loaded runtime/model.Model with NewBase (it borrows the weights), make or load a
// lora.Adapter, then NewTrainer(base, adapter, examples, Config) and Run(ctx) (or Step(ctx) in a
// loop). The adapter's host weights are updated in place after every step; lora.Adapter.Save writes
// them in PEFT's format. Gradients and Loss compute one batch without updating anything.
//
// The graph runs on any tensor.Backend that also implements tensor.Backward (the CPU backend does).
// Batches are right-padded, so no attention mask is needed. The gradients are those of PEFT: base
// weights frozen, DoRA's weight norm treated as a constant.
package train
