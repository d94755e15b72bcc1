"""Benchmark files for the world's eval images, in LLaVA's formats: GQA, POPE, MME and MMBench.

Every question is built from the eval scenes' ground truth with the question generators of
sea.world.language, so each answer can be checked against ground_truth/eval.jsonl.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import numpy as np

from sea.utils.io import write_json
from sea.world.config import COUNT_WORDS, WorldConfig
from sea.world.language import (
    ASKERS,
    LETTERS,
    SHORT_SUFFIX,
    YES_NO_SUFFIX,
    absent_pair,
    make_options,
    pick,
    refer,
    separated_pairs,
    with_article,
)
from sea.world.scene import Scene

GQA_CODE, POPE_CODE, MME_CODE, MMBENCH_CODE = 11, 12, 13, 14

GQA_KINDS = ("color", "shape", "count", "existence", "relation")
GQA_PER_IMAGE = 2
GQA_TYPES = {
    "color": {"structural": "query", "semantic": "attr", "detailed": "colorQuery"},
    "shape": {"structural": "query", "semantic": "attr", "detailed": "shapeQuery"},
    "count": {"structural": "query", "semantic": "obj", "detailed": "countQuery"},
    "existence": {"structural": "verify", "semantic": "obj", "detailed": "existObj"},
    "relation": {"structural": "choose", "semantic": "rel", "detailed": "relChooser"},
}

POPE_CATEGORIES = ("random", "popular", "adversarial")
POPE_TEMPLATE = "Is there a {obj} in the image?"
# Popular negatives come from the this many most frequent absent objects.
POPE_POPULAR_TOP = 3

MME_CATEGORIES = ("existence", "count", "position", "color")

MMBENCH_KINDS = ("color", "shape", "count", "position")
MMBENCH_CATEGORIES = {
    "color": ("attribute_recognition", "finegrained_perception (instance-level)"),
    "shape": ("shape_recognition", "finegrained_perception (instance-level)"),
    "count": ("object_counting", "finegrained_perception (cross-instance)"),
    "position": ("object_localization", "finegrained_perception (instance-level)"),
}
CIRCULAR_OFFSET = 1_000_000


def _dump_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def _image_name(scene: Scene) -> str:
    return f"{scene.id}.png"


# ----------------------------------------------------------------------------- GQA


def write_gqa(scenes: list[Scene], cfg: WorldConfig, seed: int, out: Path) -> dict[str, int]:
    """questions.jsonl (LLaVA question file) and testdev_balanced_questions.json (GQA annotations)."""
    questions: list[dict] = []
    annotations: dict[str, dict] = {}
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, GQA_CODE, i])
        made = 0
        for j in rng.permutation(len(GQA_KINDS)):
            kind = GQA_KINDS[int(j)]
            qa = ASKERS[kind](scene, cfg, rng)
            if qa is None:
                continue
            qid = str(len(questions) + 1)
            questions.append(
                {
                    "question_id": qid,
                    "image": _image_name(scene),
                    "text": qa.question + SHORT_SUFFIX,
                    "category": kind,
                }
            )
            annotations[qid] = {
                "imageId": scene.id,
                "question": qa.question,
                "answer": qa.short.lower(),
                "fullAnswer": qa.long,
                "types": dict(GQA_TYPES[kind]),
            }
            made += 1
            if made == GQA_PER_IMAGE:
                break
    _dump_jsonl(out / "questions.jsonl", questions)
    write_json(out / "testdev_balanced_questions.json", annotations)
    return {"gqa_questions": len(questions)}


# ----------------------------------------------------------------------------- POPE


def object_popularity(scenes: list[Scene]) -> list[tuple[str, str]]:
    """All (colour, shape) pairs seen in `scenes`, most frequent first (ties by name)."""
    counts = Counter(pair for s in scenes for pair in s.pairs())
    return [pair for pair, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def pope_negative(
    category: str, scene: Scene, cfg: WorldConfig, ranking: list[tuple[str, str]], rng: np.random.Generator
) -> tuple[str, str] | None:
    """An absent object for a POPE 'no' question, chosen by the category's strategy."""
    if category == "random":
        return absent_pair(scene, cfg, rng, hard=False)
    if category == "popular":
        present = scene.pairs()
        top = [p for p in ranking if p not in present][:POPE_POPULAR_TOP]
        return pick(rng, top) if top else absent_pair(scene, cfg, rng, hard=False)
    if category == "adversarial":
        return absent_pair(scene, cfg, rng, hard=True)
    raise ValueError(f"unknown POPE category {category!r}")


def write_pope(
    scenes: list[Scene], popularity_scenes: list[Scene], cfg: WorldConfig, seed: int, out: Path
) -> dict[str, int]:
    """llava_pope_test.jsonl plus coco/coco_pope_<category>.json label files (JSON lines, same order).

    Per image and category: one question about a present object ('yes'), then one about an absent
    object ('no'), so every category is balanced.
    """
    ranking = object_popularity(popularity_scenes)
    questions: list[dict] = []
    metrics: dict[str, int] = {}
    for c, category in enumerate(POPE_CATEGORIES):
        labels: list[dict] = []
        for i, scene in enumerate(scenes):
            rng = np.random.default_rng([seed, POPE_CODE, c, i])
            negative = pope_negative(category, scene, cfg, ranking, rng)
            if negative is None:
                continue
            positive = pick(rng, scene.objects)
            for (color, shape), label in (((positive.color, positive.shape), "yes"), (negative, "no")):
                text = POPE_TEMPLATE.format(obj=f"{color} {shape}")
                qid = len(questions) + 1
                questions.append(
                    {
                        "question_id": qid,
                        "image": _image_name(scene),
                        "text": text + SHORT_SUFFIX,
                        "category": category,
                    }
                )
                labels.append({"question_id": qid, "image": _image_name(scene), "text": text, "label": label})
        _dump_jsonl(out / "coco" / f"coco_pope_{category}.json", labels)
        metrics[f"pope_{category}_questions"] = len(labels)
    _dump_jsonl(out / "llava_pope_test.jsonl", questions)
    return metrics


# ----------------------------------------------------------------------------- MME

MME_EXIST = (
    "Is there {a_obj} in this image?",
    "Does this image contain {a_obj}?",
    "Is {a_obj} shown in this image?",
)
MME_COUNT = (
    "Are there {n} {noun} in this image?",
    "Does this image show exactly {n} {noun}?",
    "Is the number of {noun} in this image {n}?",
)
MME_COUNT_ONE = (
    "Is there exactly one {noun1} in this image?",
    "Does this image show exactly one {noun1}?",
    "Is the number of {noun} in this image one?",
)
MME_REL = {
    "left": ("Is the {a} on the left of the {b}?", "Is the {a} to the left of the {b}?"),
    "right": ("Is the {a} on the right of the {b}?", "Is the {a} to the right of the {b}?"),
    "above": ("Is the {a} above the {b}?", "Is the {a} located above the {b}?"),
    "below": ("Is the {a} below the {b}?", "Is the {a} located below the {b}?"),
}
OPPOSITE = {
    "left": "right",
    "right": "left",
    "above": "below",
    "below": "above",
    "top": "bottom",
    "bottom": "top",
}
MME_HALF = "Is the {a} in the {half} half of the image?"
MME_COLOR = (
    "Is the {shape} {color}?",
    "Is the {shape} in this image {color}?",
    "Is the color of the {shape} {color}?",
)
MME_COLOR_ANY = ("Is there a {color} object in this image?", "Does this image contain something {color}?")


def _mme_existence(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> list[tuple[str, str]]:
    tpl = pick(rng, MME_EXIST)
    o = pick(rng, scene.objects)
    neg = absent_pair(scene, cfg, rng, hard=bool(rng.random() < 0.5))
    if neg is None:
        return []
    return [
        (tpl.format(a_obj=with_article(o.phrase)), "Yes"),
        (tpl.format(a_obj=with_article(f"{neg[0]} {neg[1]}")), "No"),
    ]


def _count_question(n: int, noun: str, rng: np.random.Generator) -> str:
    noun_pl = noun + "s"
    if n == 1:
        return pick(rng, MME_COUNT_ONE).format(noun1=noun, noun=noun_pl)
    return pick(rng, MME_COUNT).format(n=COUNT_WORDS[n], noun=noun_pl)


def _mme_count(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> list[tuple[str, str]]:
    if rng.random() < 0.5:
        n, noun = len(scene.objects), "object"
    else:
        color = pick(rng, sorted(scene.color_count()))
        n, noun = scene.color_count()[color], f"{color} object"
    wrong = [m for m in range(1, cfg.max_objects + 2) if m != n]
    m = pick(rng, wrong)
    seed_q = int(rng.integers(1 << 30))
    # Same phrasing for the yes and the no question of a pair, as in MME.
    yes_q = _count_question(n, noun, np.random.default_rng(seed_q))
    no_q = _count_question(m, noun, np.random.default_rng(seed_q))
    return [(yes_q, "Yes"), (no_q, "No")]


def _mme_position(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> list[tuple[str, str]]:
    pairs = separated_pairs(scene)
    if pairs:
        a, b, rel = pick(rng, pairs)
        ra, rb = refer(scene, a, rng), refer(scene, b, rng)
        k = int(rng.integers(2))
        return [
            (MME_REL[rel][k].format(a=ra, b=rb), "Yes"),
            (MME_REL[OPPOSITE[rel]][k].format(a=ra, b=rb), "No"),
        ]
    o = pick(rng, scene.objects)
    ref = refer(scene, o, rng)
    cx, cy = o.center
    half, margin = scene.image_size / 2, 0.04 * scene.image_size
    if abs(cx - half) >= margin:
        side = "left" if cx < half else "right"
    elif abs(cy - half) >= margin:
        side = "top" if cy < half else "bottom"
    else:
        return [
            (f"Is the {ref} near the center of the image?", "Yes"),
            (
                f"Is the {ref} in the {pick(rng, ['top left', 'top right', 'bottom left', 'bottom right'])} "
                "corner of the image?",
                "No",
            ),
        ]
    return [(MME_HALF.format(a=ref, half=side), "Yes"), (MME_HALF.format(a=ref, half=OPPOSITE[side]), "No")]


def _mme_color(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> list[tuple[str, str]]:
    unique = [o for o in scene.objects if scene.shape_count()[o.shape] == 1]
    if unique:
        o = pick(rng, unique)
        others = [c for c in cfg.colors if c != o.color]
        in_image = [c for c in others if c in scene.color_count()]
        wrong = pick(rng, in_image) if in_image and rng.random() < 0.5 else pick(rng, others)
        tpl = pick(rng, MME_COLOR)
        return [
            (tpl.format(shape=o.shape, color=o.color), "Yes"),
            (tpl.format(shape=o.shape, color=wrong), "No"),
        ]
    absent = [c for c in cfg.colors if c not in scene.color_count()]
    if not absent:
        return []
    tpl = pick(rng, MME_COLOR_ANY)
    return [
        (tpl.format(color=pick(rng, sorted(scene.color_count()))), "Yes"),
        (tpl.format(color=pick(rng, absent)), "No"),
    ]


MME_BUILDERS = {
    "existence": _mme_existence,
    "count": _mme_count,
    "position": _mme_position,
    "color": _mme_color,
}


def write_mme(scenes: list[Scene], cfg: WorldConfig, seed: int, out: Path) -> dict[str, int]:
    """llava_mme.jsonl and ground_truth/<category>.txt: two questions per image and category, the yes
    question first, then the no question. As in LLaVA's llava_mme.jsonl (and lmms-eval), the model is asked
    with the short-answer suffix; the ground truth keeps MME's " Please answer yes or no." (the scorer
    swaps one for the other, as convert_answer_to_mme.py does)."""
    questions: list[dict] = []
    metrics: dict[str, int] = {}
    for c, category in enumerate(MME_CATEGORIES):
        lines: list[str] = []
        for i, scene in enumerate(scenes):
            rng = np.random.default_rng([seed, MME_CODE, c, i])
            for q, gt in MME_BUILDERS[category](scene, cfg, rng):
                questions.append(
                    {
                        "question_id": f"{category}/{_image_name(scene)}",
                        "image": _image_name(scene),
                        "text": q + SHORT_SUFFIX,
                        "category": category,
                    }
                )
                lines.append(f"{_image_name(scene)}\t{q}{YES_NO_SUFFIX}\t{gt}\n")
        gt_path = out / "ground_truth" / f"{category}.txt"
        gt_path.parent.mkdir(parents=True, exist_ok=True)
        gt_path.write_text("".join(lines), encoding="utf-8")
        metrics[f"mme_{category}_questions"] = len(lines)
    _dump_jsonl(out / "llava_mme.jsonl", questions)
    return metrics


# ----------------------------------------------------------------------------- MMBench

MMBENCH_HINTS = (
    "The image shows simple colored shapes on a plain background.",
    "Look at the shapes and their colors.",
)


def write_mmbench(
    scenes: list[Scene], image_bytes: dict[str, bytes], cfg: WorldConfig, seed: int, out: Path
) -> dict[str, int]:
    """mmbench_dev.tsv: one multiple-choice question per image, plus circular copies with rotated options."""
    n_opt = cfg.mmbench_options
    letters = LETTERS[: max(4, n_opt)]
    header = ["index", "question", "hint", *letters, "answer", "category", "l2-category", "image"]
    base: list[tuple[int, str, str, list[str], int, str, str, str]] = []
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, MMBENCH_CODE, i])
        for j in rng.permutation(len(MMBENCH_KINDS)):
            kind = MMBENCH_KINDS[int(j)]
            qa = ASKERS[kind](scene, cfg, rng)
            made = make_options(qa, cfg, rng, n_opt) if qa is not None else None
            if made is None:
                continue
            options, answer = made
            hint = pick(rng, MMBENCH_HINTS) if rng.random() < 0.3 else ""
            cat, l2 = MMBENCH_CATEGORIES[kind]
            image = base64.b64encode(image_bytes[scene.id]).decode("ascii")
            base.append((len(base), qa.question, hint, options, answer, cat, l2, image))
            break
    rows = ["\t".join(header)]
    for k in range(n_opt):
        for index, question, hint, options, answer, cat, l2, image in base:
            rotated = options[k:] + options[:k]
            cells = rotated + [""] * (len(letters) - n_opt)
            row = [
                str(index + k * CIRCULAR_OFFSET),
                question,
                hint,
                *cells,
                LETTERS[(answer - k) % n_opt],
                cat,
                l2,
                image,
            ]
            if any("\t" in c or "\n" in c for c in row):
                raise ValueError(f"MMBench cell with a tab or newline in row {row[:3]}")
            rows.append("\t".join(row))
    path = out / "mmbench_dev.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"mmbench_questions": len(base), "mmbench_rows": len(rows) - 1}


def write_eval_sets(
    scenes: list[Scene],
    popularity_scenes: list[Scene],
    image_bytes: dict[str, bytes],
    cfg: WorldConfig,
    seed: int,
    out: Path,
) -> dict[str, int]:
    """All four benchmarks under `out` (the world's eval/ folder); returns question counts."""
    metrics: dict[str, int] = {}
    metrics.update(write_gqa(scenes, cfg, seed, out / "gqa"))
    metrics.update(write_pope(scenes, popularity_scenes, cfg, seed, out / "pope"))
    metrics.update(write_mme(scenes, cfg, seed, out / "mme"))
    metrics.update(write_mmbench(scenes, image_bytes, cfg, seed, out / "mmbench"))
    return metrics
