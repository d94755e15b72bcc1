"""Scorers that reproduce LLaVA-1.5's own evaluation scripts, one module per benchmark family.

Every scorer has the signature `score_x(answers, annotations, questions=None, *, allow_missing=...)`:
`answers` are LLaVA answer records (`sea.eval.answers.read_answers`), `annotations` the benchmark's own
ground-truth file or folder, `questions` the LLaVA question file where the scorer needs it (POPE). The
result is `{"benchmark", "metrics", "counts", ["splits"], ["details"]}`; rates are in percent, MME in
points.

| scorer | annotations | missing answers |
|---|---|---|
| gqa | testdev_balanced_questions.json | wrong, counted |
| pope | folder of coco_pope_<category>.json (+ questions) | error / skipped with allow_missing |
| mme | ground-truth folder (world `<subtask>.txt` or MME release) | error / "other" with allow_missing |
| mmbench | the dev TSV | error / wrong with allow_missing |
| sqa | ScienceQA folder (problems.json, pid_splits.json) | FAILED, counted |
| seed | SEED-Bench.json | wrong, counted |
| textvqa | TextVQA_0.5.1_val.json | error / answered subset with allow_missing |
| vqav2 | VQA annotations JSON | error / answered subset with allow_missing |

Answers that match nothing in the annotations, and questions answered twice, are always errors.
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
    allow_missing: bool | None = None,
    **options: Any,
) -> Result:
    """Run scorer `scorer`; `allow_missing=None` keeps the scorer's default."""
    kwargs = dict(options)
    if allow_missing is not None:
        kwargs["allow_missing"] = allow_missing
    return get_scorer(scorer)(answers, annotations, questions, **kwargs)


__all__ = ["ALIASES", "SCORERS", "Result", "get_scorer", "score"]
