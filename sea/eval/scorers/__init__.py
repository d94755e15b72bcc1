"""Scorers that reproduce LLaVA-1.5's own evaluation scripts, one module per benchmark family.

Every scorer has the signature `score_x(answers, annotations, questions=None, *, allow_missing=...)`:
`answers` are LLaVA answer records (`sea.eval.answers.read_answers`), `annotations` the benchmark's own
ground-truth file or folder, `questions` the LLaVA question file where the scorer needs it (POPE). The
result is `{"benchmark", "metrics", "counts", ["splits"], ["details"]}`; rates are in percent, MME in
points.

| scorer | annotations | with allow_missing, an unanswered question ... |
|---|---|---|
| gqa | testdev_balanced_questions.json | is wrong |
| pope | folder of coco_pope_<category>.json (+ questions) | is skipped (its category scored on the rest) |
| mme | ground-truth folder (world `<subtask>.txt` or MME release) | counts as "other" |
| mmbench | the dev TSV | is a wrong copy |
| sqa | ScienceQA folder (problems.json, pid_splits.json) | is FAILED |
| seed | SEED-Bench.json | is wrong |
| textvqa | TextVQA_0.5.1_val.json | is left out (accuracy over the answered ones) |
| vqav2 | VQA annotations JSON | is left out (accuracy over the answered ones) |

No silent zeros: without `allow_missing` (`--allow-missing`, `eval.allow_missing`) every scorer refuses an
answer file that leaves any question unanswered, naming how many (`sea.eval.answers.check_missing`).
Answers that match nothing in the annotations, and questions answered twice, are errors (ScienceQA: see
its module, which ignores and counts them as the reference does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.scorers.common import Result
from sea.eval.scorers.gqa import score_gqa
from sea.eval.scorers.mmbench import score_mmbench
from sea.eval.scorers.mme import score_mme
from sea.eval.scorers.pope import score_pope
from sea.eval.scorers.seed import score_seed
from sea.eval.scorers.sqa import score_sqa
from sea.eval.scorers.vqa import score_textvqa, score_vqav2

Scorer = Callable[..., Result]

SCORERS: dict[str, Scorer] = {
    "gqa": score_gqa,
    "pope": score_pope,
    "mme": score_mme,
    "mmbench": score_mmbench,
    "sqa": score_sqa,
    "seed": score_seed,
    "textvqa": score_textvqa,
    "vqav2": score_vqav2,
}
ALIASES = {"scienceqa": "sqa", "seed_bench": "seed", "mmbench_cn": "mmbench", "vqa": "vqav2"}


def get_scorer(name: str) -> Scorer:
    """The scorer registered as `name` (or an alias)."""
    key = ALIASES.get(name, name)
    if key not in SCORERS:
        raise SeaError(f"unknown scorer {name!r}; known: {', '.join(sorted(SCORERS))}")
    return SCORERS[key]


def score(
    scorer: str,
    answers: Sequence[dict[str, Any]],
    annotations: str | Path | None,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
    **options: Any,
) -> Result:
    """Run scorer `scorer` (`options`: scorer-specific keywords, e.g. sqa's `split` and `strict`)."""
    return get_scorer(scorer)(answers, annotations, questions, allow_missing=allow_missing, **options)


__all__ = ["ALIASES", "SCORERS", "Result", "get_scorer", "score"]
