"""Stage-1 probe: caption grounding. SEA acts on stage 1, so its effect can be read there, before
instruction tuning: the stage-1 model (frozen LLM + the arm's adapter, LLaVA's `plain` template) writes
a caption for each held-out world image, and the caption is scored against the image's ground truth.

Mentions: an object word is a colour word (of the world's object colours) followed by a shape word
(singular or plural, up to two words later: "red circle", "red small circle"), a colour alone names a
colour, a shape alone a shape. Per image, the mentioned sets are compared with the true sets:

- `object_{precision,recall,f1}`: (colour, shape) pairs; `color_*` and `shape_*`: the words alone;
- averaged over images (F1 of an image with no mention and a non-empty truth is 0);
- `chance_*`: the same captions scored against another image's truth (the next image's): what a
  model that ignores the image scores, so a probe number is read against its chance level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

WORD_RE = re.compile(r"[a-z]+")
KINDS = ("object", "color", "shape")
WINDOW = 2  # a shape word up to this many words after a colour word completes an object mention


def _singular(word: str, shapes: set[str]) -> str:
    if word in shapes:
        return word
    for cut in ("es", "s"):
        if word.endswith(cut) and word[: -len(cut)] in shapes:
            return word[: -len(cut)]
    return word


def mentions(caption: str, colors: Iterable[str], shapes: Iterable[str]) -> dict[str, set]:
    """The objects, colours and shapes `caption` names."""
    colors, shapes = set(colors), set(shapes)
    words = [_singular(w, shapes) for w in WORD_RE.findall(caption.lower())]
    objects = set()
    for i, w in enumerate(words):
        if w in colors:
            for later in words[i + 1 : i + 1 + WINDOW]:
                if later in shapes:
                    objects.add((w, later))
                    break
                if later in colors:
                    break
    return {
        "object": objects,
        "color": {w for w in words if w in colors},
        "shape": {w for w in words if w in shapes},
    }


def truth_sets(row: dict[str, Any]) -> dict[str, set]:
    objects = {(o["color"], o["shape"]) for o in row.get("objects", [])}
    return {"object": objects, "color": {c for c, _ in objects}, "shape": {s for _, s in objects}}


def _prf(said: set, true: set) -> tuple[float, float, float]:
    hit = len(said & true)
    p = hit / len(said) if said else (1.0 if not true else 0.0)
    r = hit / len(true) if true else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_captions(captions: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Probe metrics (module docstring) of `captions[i]` against ground-truth `rows[i]`, in percent."""
    if len(captions) != len(rows) or not rows:
        raise ValueError(f"need one caption per ground-truth row, got {len(captions)} / {len(rows)}")
    colors = {o["color"] for r in rows for o in r.get("objects", [])}
    shapes = {o["shape"] for r in rows for o in r.get("objects", [])}
    said = [mentions(c, colors, shapes) for c in captions]
    truth = [truth_sets(r) for r in rows]
    shifted = truth[1:] + truth[:1]
    out: dict[str, float] = {}
    for prefix, against in (("", truth), ("chance_", shifted)):
        for kind in KINDS:
            prf = [_prf(s[kind], t[kind]) for s, t in zip(said, against, strict=True)]
            for j, name in enumerate(("precision", "recall", "f1")):
                out[f"{prefix}{kind}_{name}"] = 100.0 * sum(x[j] for x in prf) / len(prf)
    out["images"] = float(len(rows))
    out["empty_captions"] = 100.0 * sum(1 for c in captions if not c.strip()) / len(captions)
    return out


def stage1_captions(model: Any, images: Sequence[Any], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy captions of the stage-1 model (`plain` template: the image, then the caption)."""
    from sea.data.templates import build_prompt_for_generation, end_of_turn_ids

    prompt = build_prompt_for_generation(
        [{"from": "human", "value": "<image>\n"}], model.tokenizer, "plain", has_image=True
    )
    eos = end_of_turn_ids(model.tokenizer, "plain")
    captions: list[str] = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start : start + batch_size])
        out = model.generate(
            [prompt] * len(chunk), images=chunk, max_new_tokens=max_new_tokens, eos_token_ids=eos
        )
        captions += [model.tokenizer.decode(o, skip_special_tokens=True).strip() for o in out]
    return captions


def run_probe(
    model: Any,
    pixels: Sequence[Any],
    rows: Sequence[dict[str, Any]],
    batch_size: int,
    max_new_tokens: int,
    out: Path,
) -> dict[str, float]:
    """Captions for `pixels` (one per ground-truth row), their scores, and `captions.jsonl` in `out`."""
    import json

    captions = stage1_captions(model, pixels, batch_size, max_new_tokens)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "captions.jsonl").open("w", encoding="utf-8") as f:
        for row, caption in zip(rows, captions, strict=True):
            f.write(
                json.dumps(
                    {
                        "image": row["image"],
                        "caption": caption,
                        "truth": sorted(map(list, truth_sets(row)["object"])),
                    }
                )
                + "\n"
            )
    return score_captions(captions, rows)
