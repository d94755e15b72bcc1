"""POPE as LLaVA's `llava/eval/eval_pope.py`, per category (random / popular / adversarial).

Parsing of an answer: keep the text before the first "."; drop commas; split on single spaces; "no" if any
word is exactly `No`, `not` or `no`, otherwise "yes" ("Yes, there is" -> yes; "There is no dog" -> no;
"NO" -> yes, as in the reference). Labels: "no" -> negative, anything else positive.

Which label goes with which answer: as in the reference, the category's questions (question-file order)
are zipped with the lines of `coco_pope_<category>.json`. Answers are put in question-file order first, so
an answer file in any order scores the same. Where both carry an `image`, the pairing is checked and a
mismatch is an error (the reference silently zips; unequal lengths are an error here too).

Defined where the reference divides by zero: precision is 0 when nothing was predicted "yes"
(TP + FP = 0), recall is 0 when no label is "yes", F1 is 0 when precision + recall = 0. All rates are in
percent. `metrics` averages each rate over the categories (LLaVA's POPE number is the F1 or accuracy
average; both are reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import listing, match_answers
from sea.eval.outcomes import unit_outcomes
from sea.eval.scorers.common import Result, qid_key, require_path, result
from sea.utils.io import read_jsonl

RATES = ("accuracy", "precision", "recall", "f1", "yes_ratio")
CHANCE = ("f1", "accuracy")


def pope_answer(text: str) -> str:
    """'yes' or 'no', parsed as `eval_pope.py` does."""
    if text.find(".") != -1:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def pope_unclear(text: str) -> bool:
    """True when the answer holds no yes / no / not word in any case (e.g. "1"): `pope_answer` reads it as
    "yes" all the same, as the reference does; the report counts these as unparsed."""
    words = text.split(".")[0].replace(",", "").lower().split()
    return not {"yes", "no", "not"} & set(words)


def pope_chance(labels_per_split: dict[str, list[str]]) -> dict[str, Any]:
    """`chance`: per split the better constant answer (always "yes" or always "no"), averaged over splits."""
    best = {
        c: {r: max(pope_metrics([a] * len(labels), labels)[r] for a in ("yes", "no")) for r in CHANCE}
        for c, labels in labels_per_split.items()
        if labels
    }
    metrics = {r: sum(b[r] for b in best.values()) / len(best) for r in CHANCE} if best else {}
    return {"metrics": metrics, "rule": "per split the better of always 'yes' and always 'no'"}


def pope_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Counts and rates (percent) for parsed predictions ('yes'/'no') against labels ('no' = negative)."""
    if len(predictions) != len(labels):
        raise SeaError(f"pope: {len(predictions)} predictions for {len(labels)} labels")
    pred = [0 if p == "no" else 1 for p in predictions]
    gold = [0 if g == "no" else 1 for g in labels]
    tp = sum(p == 1 and g == 1 for p, g in zip(pred, gold, strict=True))
    fp = sum(p == 1 and g == 0 for p, g in zip(pred, gold, strict=True))
    tn = sum(p == 0 and g == 0 for p, g in zip(pred, gold, strict=True))
    fn = sum(p == 0 and g == 1 for p, g in zip(pred, gold, strict=True))
    precision = float(tp) / float(tp + fp) if tp + fp else 0.0
    recall = float(tp) / float(tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = tp + tn + fp + fn
    return {
        "accuracy": (tp + tn) / n * 100 if n else 0.0,
        "precision": precision * 100,
        "recall": recall * 100,
        "f1": f1 * 100,
        "yes_ratio": pred.count(1) / len(pred) * 100 if pred else 0.0,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": n,
    }


def _label_files(directory: Path) -> dict[str, Path]:
    if directory.is_file():
        raise SeaError(
            f"pope: annotations must be the folder holding coco_pope_<category>.json, got {directory}"
        )
    files = {
        p.name[len("coco_pope_") : -len(".json")]: p
        for p in sorted(directory.iterdir())
        if p.name.startswith("coco_pope_") and p.name.endswith(".json")
    }
    if not files:
        raise SeaError(f"pope: no coco_pope_<category>.json label files in {directory}")
    return files


def score_pope(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Per-category metrics plus their averages. Needs the question file (`llava_pope_test.jsonl`) for
    the categories. Missing answers are an error unless `allow_missing` (then a category is scored over
    its answered questions, and a category with none is left out)."""
    label_dir = require_path(annotations, "pope", "annotation folder (with coco_pope_<category>.json)")
    qpath = require_path(questions, "pope", "question file (llava_pope_test.jsonl, for the categories)")
    qs = read_jsonl(qpath)
    ids = [qid_key(q["question_id"]) for q in qs]
    if len(set(ids)) != len(ids):
        dup = [i for i in dict.fromkeys(ids) if ids.count(i) > 1]
        raise SeaError(f"pope: question ids repeat in {qpath.name}: {listing(dup)}")
    matched, missing = match_answers(
        answers,
        ids,
        "pope",
        key=lambda a: qid_key(a["question_id"]),
        allow_missing=allow_missing,
        what=qpath.name,
    )
    files = _label_files(label_dir)
    categories = list(dict.fromkeys(str(q.get("category")) for q in qs))
    unlabelled = [c for c in categories if c not in files]
    if unlabelled:
        raise SeaError(
            f"pope: no coco_pope_<category>.json in {label_dir} for question categories {unlabelled}"
        )
    splits: dict[str, dict[str, float]] = {}
    units: dict[str, list[tuple[str, list[int]]]] = {}
    split_labels: dict[str, list[str]] = {}
    for category, path in files.items():
        cat_qs = [q for q in qs if str(q.get("category")) == category]
        labels = read_jsonl(path)
        if len(labels) != len(cat_qs):
            raise SeaError(
                f"pope: {path.name} has {len(labels)} labels but {qpath.name} has {len(cat_qs)} "
                f"'{category}' questions: the annotation does not match the question file"
            )
        wrong = [
            qid_key(q["question_id"])
            for q, lab in zip(cat_qs, labels, strict=True)
            if "image" in q and isinstance(lab, dict) and "image" in lab and q["image"] != lab["image"]
        ]
        if wrong:
            raise SeaError(f"pope: {path.name} pairs other images with questions {listing(wrong)}")
        qids = [qid_key(q["question_id"]) for q in cat_qs]
        pairs = [
            (qid, pope_answer(matched[qid]["text"]), lab["label"])
            for qid, lab in zip(qids, labels, strict=True)
            if qid in matched
        ]
        split_labels[category] = [lab["label"] for lab in labels]
        if pairs:
            splits[category] = pope_metrics([p for _, p, _ in pairs], [g for _, _, g in pairs])
            units[category] = [(qid, _confusion(p, g)) for qid, p, g in pairs]
    if not splits:
        raise SeaError("pope: no category has any answer to score")
    metrics = {r: sum(s[r] for s in splits.values()) / len(splits) for r in RATES}
    counts = {
        "questions": len(ids),
        "answered": len(matched),
        "missing": len(missing),
        "unparsed": sum(pope_unclear(a["text"]) for a in matched.values()),
    }
    rates = {c: {r: s[r] for r in RATES} for c, s in splits.items()}
    confusion = {c: {k: s[k] for k in ("tp", "fp", "tn", "fn", "n")} for c, s in splits.items()}
    out = result("pope", metrics, counts, splits=rates, details={"confusion": confusion})
    out["outcomes"] = unit_outcomes("pope_f1", "question", ["tp", "fp", "tn", "fn"], units)
    out["chance"] = pope_chance(split_labels)
    return out


def _confusion(pred: str, label: str) -> list[int]:
    """One question's one-hot (tp, fp, tn, fn), as `pope_metrics` counts it."""
    p, g = pred != "no", label != "no"
    return [int(p and g), int(p and not g), int(not p and not g), int(not p and g)]
