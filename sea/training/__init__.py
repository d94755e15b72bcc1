"""Training for stage 1 (`align`) and stage 2 (`instruct`).

- `sea_loss`: SEA's token-level alignment loss (window / label sampling, de-duplication, label
  embeddings, symmetric InfoNCE with a learnable logit scale) and its settings;
- `data`: conversation datasets, the global-batch sampler (data order fixed per optimizer step), the
  collator (which samples SEA's pairs on the CPU);
- `modules`: `AlignModule` (L_g + lambda L_a) and `InstructModule` (L_g), what the loop trains;
- `recipe`: what both training stages share: setup, fit (accelerator, checkpoints, loop), save
  (`TrainingRecipe`, subclassed by `sea.stages.align` and `sea.stages.instruct`);
- `loop`: the one accelerate training loop (`train`, `TrainSettings`, `make_accelerator`);
- `optim`: AdamW parameter groups and the warmup + cosine schedule;
- `checkpoint`: save/resume with stale-config detection; `arms`: per-arm config and folders.

Modules import torch; import them directly (this package file stays light).
"""
