"""Label quality against the shapes world's per-patch ground truth.

A patch of object k is right when a label is k's colour or shape word; background patches (object 0)
should end up unlabelled. Per (feature, sign) variant, without a background filter:

- `top1`: object patches whose top-1 label is right (an unlabelled patch counts as wrong);
- `topn`: object patches with a right word among their kept labels;
- `top1_color` / `top1_shape`: top-1 is the object's colour / shape word;
- `fg_labelled` / `bg_unlabelled`: object patches with at least one label / background patches with none;
  `bg_balanced` their mean (how well the background filter separates the two).

Per background filter, on the configured variant, the same plus `label_precision`: of the patches that
keep labels, the fraction whose top-1 is right (a labelled background patch counts as wrong), and
`sampled_precision`: the chance that the label `align` draws for such a patch is right, when it draws
one of the kept labels with probability score / sum of scores (sea-method.md Eq. 9, `align.sea.sampling:
weighted`). With `label.top_n: 1` the two are equal; with ten kept labels the draw is the top-1 word only
a fraction of the time, and `sampled_precision` is what SEA trains on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sea.labeling.scoring import (
    BackgroundFilter,
    background_mask,
    drawn_hit_rate,
    finalize,
    similarity_topk,
)
from sea.labeling.settings import Quality
from sea.labeling.transfer import overlap_index

log = logging.getLogger(__name__)

MISSING = -2  # a ground-truth word absent from the word list never matches


@dataclass
class GroundTruth:
    """Per image: object index per patch on the label grid (B, N) and the right word ids per object
    patch (B, N, 2): colour and shape (MISSING for background)."""

    image_ids: list[str]
    objects: torch.Tensor
    words: torch.Tensor
    records: list[dict[str, Any]]


def read_ground_truth(path: str | Path) -> dict[str, dict[str, Any]]:
    """World ground-truth rows (`ground_truth/<split>.jsonl`) by image path relative to the world folder."""
    rows = {}
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows[row["image"]] = row
    return rows


def ground_truth_on_grid(
    records: Sequence[dict[str, Any]], image_ids: Sequence[str], grid: Sequence[int], words: Sequence[str]
) -> GroundTruth:
    """Ground truth mapped onto `grid` (each label patch takes the truth patch overlapping it most)."""
    pos = {w: i for i, w in enumerate(words)}
    objects, right = [], []
    for rec in records:
        gt = torch.as_tensor(rec["patch_objects"], dtype=torch.long)
        index = overlap_index(tuple(gt.shape), tuple(grid))
        obj = gt.reshape(-1)[index]
        table = torch.full((int(obj.max()) + 1 if obj.numel() else 1, 2), MISSING, dtype=torch.long)
        for o in rec["objects"]:
            if o["index"] < table.shape[0]:
                table[o["index"]] = torch.tensor([pos.get(o["color"], MISSING), pos.get(o["shape"], MISSING)])
        table[0] = MISSING
        objects.append(obj)
        right.append(table[obj])
    return GroundTruth(list(image_ids), torch.stack(objects), torch.stack(right), list(records))


def evaluate(ids: torch.Tensor, gt: GroundTruth, scores: torch.Tensor | None = None) -> dict[str, float]:
    """Accuracy metrics (module docstring) of labels `ids` (B, N, n) int, -1 = empty; with their
    `scores`, also `sampled_precision`."""
    ids = ids.to("cpu", torch.long)
    fg = gt.objects > 0
    bg = ~fg
    hit = (ids.unsqueeze(-1) == gt.words.unsqueeze(-2)).any(-1) & (ids >= 0)  # (B, N, n)
    top1 = hit[..., 0]
    labelled = ids[..., 0] >= 0

    def frac(x: torch.Tensor, where: torch.Tensor) -> float:
        n = int(where.sum())
        return float((x & where).sum()) / n if n else float("nan")

    metrics = {
        "top1": frac(top1, fg),
        "topn": frac(hit.any(-1), fg),
        "top1_color": frac(ids[..., 0] == gt.words[..., 0], fg),
        "top1_shape": frac(ids[..., 0] == gt.words[..., 1], fg),
        "fg_labelled": frac(labelled, fg),
        "bg_unlabelled": frac(~labelled, bg),
        "label_precision": frac(top1, labelled),
        "bg_balanced": (frac(labelled, fg) + frac(~labelled, bg)) / 2,
    }
    if scores is not None:
        metrics["sampled_precision"] = drawn_hit_rate(ids, scores.to("cpu"), hit, float("nan"))
    return metrics


def variant_report(
    feats: dict[str, torch.Tensor],
    text: torch.Tensor,
    gt: GroundTruth,
    signs: Iterable[str],
    top_n: int,
    min_score: float,
    map_ids: Any = None,
    centers: dict[str, torch.Tensor] | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """`<feature>/<sign>/<metric>` for every feature in `feats` ((B, N, d), normalised) and sign, without
    a background filter; also the label ids per variant (for the label maps). `map_ids` maps labels onto
    the ground truth's grid (cross-encoder transfer) when given; `centers`: word centring per feature."""
    from sea.labeling.scoring import SIGNS

    metrics: dict[str, float] = {}
    all_ids: dict[str, torch.Tensor] = {}
    centers = centers or {}
    for feature, f in feats.items():
        for sign in signs:
            s, i = similarity_topk(f, text, top_n, SIGNS[sign], center=centers.get(feature))
            ids, _ = finalize(s, i, min_score)
            ids = (map_ids(ids) if map_ids else ids).cpu()
            all_ids[f"{feature}/{sign}"] = ids
            for key, value in evaluate(ids, gt).items():
                metrics[f"{feature}/{sign}/{key}"] = value
    return metrics, all_ids


def filter_report(
    feats: torch.Tensor,
    text: torch.Tensor,
    gt: GroundTruth,
    sign: float,
    top_n: int,
    min_score: float,
    filters: Iterable[BackgroundFilter],
    words: Sequence[str],
    map_ids: Any = None,
    center: torch.Tensor | None = None,
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """`<filter name>/<metric>` for each background filter on one variant; the label ids per filter."""
    s, i = similarity_topk(feats, text, top_n, sign, center=center)
    metrics: dict[str, float] = {}
    all_ids: dict[str, torch.Tensor] = {}
    for flt in filters:
        ids, scores = finalize(s, i, min_score, background_mask(s, i, flt, flt.word_ids(words), feats))
        if map_ids:
            ids, scores = map_ids(ids), map_ids(scores)
        ids = ids.cpu()
        all_ids[flt.name()] = ids
        for key, value in evaluate(ids, gt, scores).items():
            metrics[f"{flt.name()}/{key}"] = value
    return metrics, all_ids


def best_variant(metrics: dict[str, float], key: str = "top1") -> str:
    """The `<feature>/<sign>` with the highest `key` in a variant report."""
    scores = {k.rsplit("/", 1)[0]: v for k, v in metrics.items() if k.endswith("/" + key) and v == v}
    return max(scores, key=scores.get) if scores else ""


def format_table(
    metrics: dict[str, float], keys: Sequence[str] = ("top1", "topn", "fg_labelled", "bg_unlabelled")
) -> str:
    """A markdown table of a `<row>/<metric>` report."""
    rows = sorted({k.rsplit("/", 1)[0] for k in metrics})
    lines = ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for r in rows:
        cells = [f"{metrics.get(f'{r}/{k}', float('nan')):.3f}" for k in keys]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- the stage's report ---------------------------------------------------------------------------
def run_quality(
    labeler: Any,
    target_grid: Sequence[int],
    rows: Sequence[dict],
    image_folder: str | Path,
    words: Sequence[str],
    q: Quality,
    out: str | Path,
) -> dict[str, float]:
    """The `label.quality` report of a labeler on manifest rows with world ground truth: every variant
    (feature x sign), the background filters on the configured variant, the stored labels; writes
    `report.json`, `report.md` and `label_maps/*.png` under `out`. Empty without ground truth."""
    from sea.labeling.patches import sample_features
    from sea.labeling.scoring import SIGNS

    gt_path = q.ground_truth
    if not q.enabled or not gt_path or not Path(gt_path).is_file():
        log.info("label quality: no ground truth (%s), skipped", gt_path)
        return {}
    truth = read_ground_truth(gt_path)
    picked = [r for r in rows if r["image"] in truth][: q.max_images]
    if not picked:
        log.warning("label quality: none of the labeled images is in %s", gt_path)
        return {}
    s, tower = labeler.settings, labeler.tower
    gt = ground_truth_on_grid(
        [truth[r["image"]] for r in picked], [r["id"] for r in picked], target_grid, words
    )
    feats = sample_features(tower, picked, image_folder, s.batch_size, labeler.mixed_precision)
    text = labeler.text.float()
    map_ids = None
    if tuple(tower.grid) != tuple(target_grid):
        index = overlap_index(tower.grid, target_grid).to(text.device)

        def map_ids(ids: torch.Tensor) -> torch.Tensor:
            return ids[:, index]

    centers = labeler.centers
    variants, variant_ids = variant_report(feats, text, gt, SIGNS, s.top_n, s.min_score, map_ids, centers)
    filters = [BackgroundFilter()] + [BackgroundFilter.from_config(f) for f in q.filters or ()]
    if s.background.name() not in {f.name() for f in filters}:
        filters.append(s.background)
    bg, bg_ids = filter_report(
        feats[s.feature],
        text,
        gt,
        SIGNS[s.sign],
        s.top_n,
        s.min_score,
        filters,
        words,
        map_ids,
        centers.get(s.feature),
    )
    stored_name = s.background.name()
    best, configured = best_variant(variants), f"{s.feature}/{s.sign}"
    if best and best != configured:
        log.warning(
            "label quality: configured variant %s has top-1 %.3f, %s measures better (%.3f)",
            configured,
            variants[f"{configured}/top1"],
            best,
            variants[f"{best}/top1"],
        )
    metrics: dict[str, float] = {
        **variants,
        **{f"background/{k}": v for k, v in bg.items()},
        **{f"labels/{k.split('/', 1)[1]}": v for k, v in bg.items() if k.startswith(stored_name + "/")},
        "configured_is_best": float(best == configured),
        "images": float(len(picked)),
    }
    out = Path(out)
    keys = ("top1", "topn", "top1_color", "top1_shape", "fg_labelled", "bg_unlabelled")
    filter_keys = (*keys, "bg_balanced", "label_precision", "sampled_precision")
    table = (
        f"# Label quality ({len(picked)} images, ground truth {gt_path})\n\n"
        f"Configured: feature={s.feature}, sign={s.sign}, background={stored_name}; "
        f"best variant by top-1: {best}.\n\n## Variants (no background filter)\n\n"
        + format_table(variants, keys)
        + f"\n\n## Background filters on {configured}\n\n"
        + format_table(bg, filter_keys)
        + "\n"
    )
    from sea.utils.io import write_json

    write_json(out / "report.json", {"best_variant": best, "configured": configured, "metrics": metrics})
    (out / "report.md").write_text(table, encoding="utf-8")
    log.info("label quality:\n%s", table)
    for i, row in enumerate(picked[: q.label_maps]):
        panels = {name: ids[i] for name, ids in variant_ids.items()}
        panels[f"stored: {configured}, {stored_name}"] = bg_ids[stored_name][i]
        draw_label_map(
            Path(image_folder) / row["image"],
            panels,
            gt.objects[i],
            gt.words[i],
            target_grid,
            words,
            out / "label_maps" / f"{i:02d}_{row['id']}.png",
            title=str(row["id"]),
        )
    return metrics


# ---- label maps ----------------------------------------------------------------------------------
RIGHT, WRONG, BACKGROUND = (0, 200, 0), (255, 40, 40), (190, 190, 190)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def draw_label_map(
    image_path: str | Path,
    panels: dict[str, torch.Tensor],
    gt_objects: torch.Tensor,
    gt_words: torch.Tensor,
    grid: Sequence[int],
    words: Sequence[str],
    out: str | Path,
    title: str = "",
    cell: int = 44,
) -> Path:
    """One PNG: the image (object patches outlined), then per panel its top-1 label per patch written over
    the dimmed image: green = right, red = wrong on an object, grey = a labelled background patch, no text
    = unlabelled."""
    from PIL import Image, ImageDraw

    gh, gw = int(grid[0]), int(grid[1])
    pw, ph, head = gw * cell, gh * cell, 18
    img = Image.open(image_path).convert("RGB").resize((pw, ph), Image.Resampling.NEAREST)
    dim = Image.blend(img, Image.new("RGB", img.size, (0, 0, 0)), 0.55)
    canvas = Image.new("RGB", ((len(panels) + 1) * (pw + 6), ph + head), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    small, tiny = _font(11), _font(max(8, cell // 4))
    for k, (name, base) in enumerate([(title or "image", img), *[(n, dim) for n in panels]]):
        x0 = k * (pw + 6)
        canvas.paste(base, (x0, head))
        draw.text((x0 + 2, 2), name[:48], fill=(0, 0, 0), font=small)
        for p in range(gh * gw):
            r, c = divmod(p, gw)
            box = (x0 + c * cell, head + r * cell, x0 + (c + 1) * cell - 1, head + (r + 1) * cell - 1)
            fg = bool(gt_objects[p] > 0)
            if k == 0:
                if fg:
                    draw.rectangle(box, outline=(255, 255, 255))
                continue
            draw.rectangle(box, outline=(60, 60, 60))
            w = int(panels[name][p, 0])
            if w < 0:
                continue
            color = (RIGHT if bool((gt_words[p] == w).any()) else WRONG) if fg else BACKGROUND
            draw.text(
                ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                words[w][:7],
                fill=color,
                font=tiny,
                anchor="mm",
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
