"""MME as LLaVA's `convert_answer_to_mme.py` + the official `eval_tool/calculation.py`.

Per subtask: score = acc * 100 + acc_plus * 100, where acc is per question and acc_plus is the share of
images with both questions right. Perception = the sum over the 10 perception subtasks present, cognition
over the 4 cognition subtasks present (summed in the official order). Prediction parsing (calculation.py):
lowercase; exactly "yes"/"no" is taken; otherwise "yes" if `pred[:4]` contains "yes", else "no" if it
contains "no", else "other" (always wrong).

Ground truth, either layout:
- the shapes world's `<dir>/<subtask>.txt`, lines `image<TAB>question<TAB>Yes|No` (calculation.py's input
  without the prediction column), an image's two questions on consecutive lines;
- MME's release folder `MME_Benchmark_release_version/<subtask>/[questions_answers_YN/]<image>.txt`,
  lines `question<TAB>Yes|No`, one file per image (what `convert_answer_to_mme.get_gt` reads).

Answers are joined to it as convert_answer_to_mme.py does: subtask and image from `question_id`
("<subtask>/<image file>"), the question from `prompt` (short-answer suffix removed, " Please answer yes or
no." appended when absent, with the two-space variant tried when that is not in the ground truth). The
image pairs come from the ground truth, not from the answer-file order, so a reordered answer file scores
the same (calculation.py pairs consecutive lines of its input).

Beyond the reference: a prediction with a tab or newline is parsed as is (in the reference it breaks the
TSV line; here it is just text); a subtask where no prediction is yes or no scores 0 + acc_plus (the
reference's precision/recall step fails there but does not enter the score); a missing answer is an error
unless `allow_missing`, then it counts as "other".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sea.errors import SeaError
from sea.eval.answers import check_missing, listing
from sea.eval.outcomes import unit_outcomes
from sea.eval.scorers.common import Result, require_path, result

PERCEPTION = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR",
)  # fmt: skip
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SHORT_SUFFIX = "Answer the question using a single word or phrase."
YES_NO = " Please answer yes or no."

Key = tuple[str, str, str]  # (subtask, image stem, question)


@dataclass(frozen=True)
class GroundTruth:
    """One MME question: where it is, its answer ('yes'/'no') and its image pair."""

    key: Key
    answer: str


def mme_parse(pred: str) -> str:
    """'yes', 'no' or 'other' (calculation.py's `parse_pred_ans`, after its `lower()`)."""
    pred = pred.lower()
    if pred in ("yes", "no"):
        return pred
    prefix = pred[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def image_stem(name: str) -> str:
    """The image part of a key: the file name up to its first "." (convert_answer_to_mme's split)."""
    return name.split("/")[-1].split(".")[0]


def _gt_answer(value: str, where: str) -> str:
    ans = value.strip().lower()
    if ans not in ("yes", "no"):
        raise SeaError(f"mme: ground truth must be Yes or No, got {value!r} ({where})")
    return ans


def _pairs_from_world_file(path: Path) -> list[list[GroundTruth]]:
    subtask = path.stem
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    items = []
    for n, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise SeaError(
                f"mme: {path}:{n}: expected image<TAB>question<TAB>answer, got {len(fields)} fields"
            )
        items.append(
            (
                fields[0],
                GroundTruth(
                    (subtask, image_stem(fields[0]), fields[1]), _gt_answer(fields[2], f"{path}:{n}")
                ),
            )
        )
    if len(items) % 2:
        raise SeaError(f"mme: {path} has {len(items)} lines: an image's questions must come in pairs")
    pairs = []
    for i in range(0, len(items), 2):
        (img_a, a), (img_b, b) = items[i], items[i + 1]
        if img_a != img_b:
            raise SeaError(
                f"mme: {path}: lines {i + 1} and {i + 2} are about different images ({img_a}, {img_b})"
            )
        pairs.append([a, b])
    return pairs


def _pairs_from_release_dir(category_dir: Path) -> list[list[GroundTruth]]:
    subtask = category_dir.name
    qa_dir = category_dir / "questions_answers_YN" if (category_dir / "images").exists() else category_dir
    if not qa_dir.is_dir():
        raise SeaError(f"mme: {qa_dir} not found")
    pairs = []
    for path in sorted(qa_dir.glob("*.txt")):
        pair = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.strip().split("\t")
            if len(fields) != 2:
                raise SeaError(f"mme: {path}:{n}: expected question<TAB>answer")
            pair.append(
                GroundTruth((subtask, image_stem(path.name), fields[0]), _gt_answer(fields[1], f"{path}:{n}"))
            )
        if len(pair) != 2:
            raise SeaError(f"mme: {path} has {len(pair)} questions; MME has two per image")
        pairs.append(pair)
    return pairs


def load_mme_ground_truth(directory: str | Path) -> dict[str, list[list[GroundTruth]]]:
    """Subtask -> image pairs of ground-truth questions, from either layout (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SeaError(f"mme: ground truth folder not found: {directory}")
    gt: dict[str, list[list[GroundTruth]]] = {}
    for path in sorted(directory.glob("*.txt")):
        gt[path.stem] = _pairs_from_world_file(path)
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        if sub.name in gt:
            raise SeaError(f"mme: subtask {sub.name} is both a .txt file and a folder in {directory}")
        gt[sub.name] = _pairs_from_release_dir(sub)
    if not gt:
        raise SeaError(f"mme: no ground truth in {directory} (<subtask>.txt files or MME's release folders)")
    return gt


def answer_key(answer: dict[str, Any], known: set[Key]) -> Key:
    """(subtask, image stem, question) of an answer, as convert_answer_to_mme.py builds it."""
    qid = str(answer["question_id"])
    subtask, image = qid.split("/")[0], image_stem(qid)
    prompt = str(answer.get("prompt", ""))
    if SHORT_SUFFIX in prompt:
        prompt = prompt.replace(SHORT_SUFFIX, "").strip()
    if YES_NO.strip() not in prompt:
        prompt = prompt + YES_NO
        if (subtask, image, prompt) not in known:
            prompt = prompt.replace(YES_NO, " " + YES_NO)
    return subtask, image, prompt


def subtask_score(pairs: Sequence[Sequence[tuple[str, str]]]) -> dict[str, float]:
    """acc, acc_plus (fractions), score (points) and the count of 'other' predictions for one subtask,
    given (gt, parsed prediction) per question, grouped by image."""
    flat = [x for pair in pairs for x in pair]
    acc = sum(g == p for g, p in flat) / len(flat)
    acc_plus = sum(all(g == p for g, p in pair) for pair in pairs) / len(pairs)
    score = 0
    for v in (acc, acc_plus):  # the reference adds them in this order, starting from int 0
        score += v * 100
    return {"acc": acc, "acc_plus": acc_plus, "score": score, "other": sum(p == "other" for _, p in flat)}


def score_mme(
    answers: Sequence[dict[str, Any]],
    annotations: str | Path,
    questions: str | Path | None = None,
    *,
    allow_missing: bool = False,
) -> Result:
    """Perception, cognition and per-subtask scores (points) for LLaVA-format MME answers."""
    gt = load_mme_ground_truth(require_path(annotations, "mme", "ground-truth folder"))
    known = {q.key for pairs in gt.values() for pair in pairs for q in pair}
    keys = [answer_key(a, known) for a in answers]
    unknown = [k for k in dict.fromkeys(keys) if k not in known]
    if unknown:
        raise SeaError(f"mme: {len(unknown)} answer(s) match no ground-truth question: {listing(unknown)}")
    dup = [k for k, c in Counter(keys).items() if c > 1]
    if dup:
        raise SeaError(f"mme: {len(dup)} question(s) answered more than once: {listing(dup)}")
    preds = {k: mme_parse(a["text"]) for k, a in zip(keys, answers, strict=True)}
    missing = [k for k in sorted(known) if k not in preds]
    check_missing("mme", missing, len(known), allow_missing, "the ground truth")
    subtasks = {
        name: subtask_score([[(q.answer, preds.get(q.key, "other")) for q in pair] for pair in pairs])
        for name, pairs in gt.items()
        if pairs
    }
    metrics: dict[str, float | None] = {}
    for group, names in (("perception", PERCEPTION), ("cognition", COGNITION)):
        present = [n for n in names if n in subtasks]
        if present:
            total = 0
            for n in present:
                total += subtasks[n]["score"]
            metrics[group] = total
    metrics |= {name: s["score"] for name, s in subtasks.items()}
    counts = {
        "questions": len(known),
        "answered": len(preds),
        "missing": len(missing),
        "other": sum(s["other"] for s in subtasks.values()),
    }
    ungrouped = sorted(set(subtasks) - set(PERCEPTION) - set(COGNITION))
    details = {"subtasks": subtasks, "ungrouped_subtasks": ungrouped}
    out = result("mme", metrics, counts, details=details)
    units = {
        name: [(f"{name}/{pair[0].key[1]}", _pair_outcome(pair, preds)) for pair in gt[name]]
        for name in PERCEPTION
        if name in subtasks
    }
    out["outcomes"] = unit_outcomes("mme_sum", "image (question pair)", ["correct", "both"], units)
    out["chance"] = mme_chance(gt)
    return out


def _pair_outcome(pair: Sequence[GroundTruth], preds: dict[Key, str]) -> list[int]:
    """(questions right, 1 if both are) for one image, as `subtask_score` counts them."""
    right = [q.answer == preds.get(q.key, "other") for q in pair]
    return [sum(right), int(all(right))]


COIN_FLIP = 75.0  # a random yes/no per question: expected acc 0.5 + acc_plus 0.25, in points


def mme_chance(gt: dict[str, list[list[GroundTruth]]]) -> dict[str, Any]:
    """`chance`: per subtask the best of always "yes", always "no" and a coin flip, summed per group."""
    best = {
        name: max(
            COIN_FLIP,
            *(
                subtask_score([[(q.answer, a) for q in pair] for pair in pairs])["score"]
                for a in ("yes", "no")
            ),
        )
        for name, pairs in gt.items()
        if pairs
    }
    metrics = {
        group: sum(best[n] for n in names if n in best)
        for group, names in (("perception", PERCEPTION), ("cognition", COGNITION))
        if any(n in best for n in names)
    }
    return {
        "metrics": metrics,
        "rule": "per subtask the best of always 'yes', always 'no' and a coin flip (75)",
    }
