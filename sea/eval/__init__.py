"""Evaluation: LLaVA-1.5's benchmarks scored exactly like LLaVA's own scripts, a batched runner that
writes LLaVA answer files, and alignment diagnostics of the visual tokens.

- `sea.eval.normalize`: the EvalAI answer processor (`normalize_answer`).
- `sea.eval.scorers`: one scorer per benchmark family (`score(name, answers, annotations, questions)`).
- `sea.eval.answers`: reading / writing LLaVA answer files, matching answers to annotations.
- `sea.eval.batch_generate`: benchmark registry, prompts, batched generation, sharding and merging.
- `sea.eval.diagnostics`: nearest-word decoding, modality gap D, TACS.
- `sea.eval.outcomes`: the per-unit outcomes a scorer's headline is computed from (`outcomes.json`).
- `sea.eval.compare` (+ `sea.eval.stats`, `sea.eval.render`): the report's arm-vs-baseline comparison,
  its bootstrap / t intervals and degenerate-answer flags, and its markdown and plots.
- `python -m sea.eval.score`: score an answer file from the command line.

Submodules import torch only where they need it; import them directly.
"""
