"""Write the whole shapes world into a folder: images, masks, ground truth, LLaVA-format data, eval
files and an LM corpus. Same config and seed give byte-identical files."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sea.utils.io import write_json
from sea.world.config import POSITION_WORDS, RGB, WorldConfig, validate_world_config
from sea.world.evalsets import object_popularity, write_eval_sets
from sea.world.language import caption, corpus_line, image_conversation, pretrain_prompt, text_conversation
from sea.world.render import png_bytes, render_scene
from sea.world.scene import Scene, sample_layout

log = logging.getLogger(__name__)

SPLITS = ("pretrain", "instruct", "eval")
SPLIT_CODES = {"pretrain": 1, "instruct": 2, "eval": 3}
TEXT_CODE, CORPUS_CODE, SHUFFLE_CODE = 4, 5, 6
FORMAT_VERSION = 1


def image_path(split: str, scene_id: str) -> str:
    """Image path relative to the world folder."""
    if split == "eval":
        return f"eval/images/{scene_id}.png"
    return f"images/{split}/{scene_id}.png"


def mask_path(split: str, scene_id: str) -> str:
    return f"masks/{split}/{scene_id}.png"


def ground_truth_row(scene: Scene, cfg: WorldConfig) -> dict[str, Any]:
    return {
        "id": scene.id,
        "image": image_path(scene.split, scene.id),
        "mask": mask_path(scene.split, scene.id),
        "background": scene.background,
        "objects": [o.to_dict() for o in scene.objects],
        "grid": cfg.grid,
        "patch_size": cfg.patch_size,
        "patch_objects": [list(row) for row in scene.patch_objects],
    }


def _write_png(path: Path, array: np.ndarray) -> bytes:
    data = png_bytes(array)
    path.write_bytes(data)
    return data


def render_split(
    cfg: WorldConfig, seed: int, split: str, n: int, out: Path
) -> tuple[list[Scene], dict[str, bytes]]:
    """Render `n` images of a split; write images, masks and ground_truth/<split>.jsonl.

    Returns the scenes and, for the eval split, each image's PNG bytes (MMBench embeds them).
    """
    code = SPLIT_CODES[split]
    for folder in (
        Path(image_path(split, "x")).parent,
        Path(mask_path(split, "x")).parent,
        Path("ground_truth"),
    ):
        (out / folder).mkdir(parents=True, exist_ok=True)
    scenes: list[Scene] = []
    kept: dict[str, bytes] = {}
    with (out / "ground_truth" / f"{split}.jsonl").open("w", encoding="utf-8") as gt:
        for i in tqdm(range(n), desc=f"world {split}", unit="img", mininterval=1.0, leave=False):
            rng = np.random.default_rng([seed, code, i])
            background, layouts, same_color, dropped = sample_layout(cfg, rng)
            scene_id = f"{split}_{i:06d}"
            image, mask, scene = render_scene(
                cfg, scene_id, split, background, layouts, rng, same_color, dropped
            )
            data = _write_png(out / image_path(split, scene_id), image)
            _write_png(out / mask_path(split, scene_id), mask)
            if split == "eval":
                kept[scene_id] = data
            gt.write(json.dumps(ground_truth_row(scene, cfg), sort_keys=True) + "\n")
            scenes.append(scene)
    return scenes, kept


def build_pretrain(scenes: list[Scene], seed: int) -> tuple[list[dict], Counter]:
    """LLaVA-558K-shaped caption samples, and how often each caption template was used."""
    samples, used = [], Counter()
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, SPLIT_CODES["pretrain"], i, 1])
        human = pretrain_prompt(rng)
        text, template = caption(scene, rng)
        used[template] += 1
        samples.append(
            {
                "id": scene.id,
                "image": image_path("pretrain", scene.id),
                "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": text}],
            }
        )
    return samples, used


def n_text_only(cfg: WorldConfig) -> int:
    """Text-only samples so that they make up `text_only_fraction` of the instruction mix (at least one)."""
    f = cfg.text_only_fraction
    if f <= 0:
        return 0
    return max(1, int(round(cfg.n_instruct * f / (1 - f))))


def build_instruct(
    scenes: list[Scene], cfg: WorldConfig, seed: int
) -> tuple[list[dict], dict[str, int], Counter]:
    """mix665K-shaped conversations (image ones plus text-only ones), shuffled; counts; template usage."""
    samples: list[dict] = []
    used: Counter = Counter()
    turns = 0
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, SPLIT_CODES["instruct"], i, 1])
        conv, templates = image_conversation(scene, cfg, rng)
        used.update(templates)
        turns += len(templates)
        samples.append({"id": scene.id, "image": image_path("instruct", scene.id), "conversations": conv})
    n_text = n_text_only(cfg)
    for j in range(n_text):
        rng = np.random.default_rng([seed, TEXT_CODE, j])
        conv, templates = text_conversation(cfg, rng)
        used.update(templates)
        turns += len(templates)
        samples.append({"id": f"text_{j:06d}", "conversations": conv})
    order = np.random.default_rng([seed, SHUFFLE_CODE]).permutation(len(samples))
    samples = [samples[int(k)] for k in order]
    return samples, {"instruct_text_only": n_text, "instruct_turns": turns}, used


def build_corpus(scenes: list[Scene], cfg: WorldConfig, seed: int) -> list[str]:
    """`corpus_sentences` lines of text about the training scenes (never the eval ones)."""
    rng = np.random.default_rng([seed, CORPUS_CODE])
    return [corpus_line(scenes, cfg, rng) for _ in range(cfg.corpus_sentences)]


def generate_world(wcfg: dict, seed: int, out: Path) -> dict:
    """Write the whole world into folder `out` (already exists, empty); return flat metrics dict of
    numbers (counts)."""
    cfg = validate_world_config(wcfg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("generating the shapes world (seed %d) into %s", seed, out)

    scenes: dict[str, list[Scene]] = {}
    eval_bytes: dict[str, bytes] = {}
    for split, n in (("pretrain", cfg.n_pretrain), ("instruct", cfg.n_instruct), ("eval", cfg.n_eval)):
        scenes[split], kept = render_split(cfg, seed, split, n, out)
        eval_bytes.update(kept)

    pretrain, caption_use = build_pretrain(scenes["pretrain"], seed)
    write_json(out / "pretrain.json", pretrain)
    instruct, instruct_counts, question_use = build_instruct(scenes["instruct"], cfg, seed)
    write_json(out / "instruct.json", instruct)

    all_scenes = [s for split in SPLITS for s in scenes[split]]
    eval_counts = write_eval_sets(scenes["eval"], all_scenes, eval_bytes, cfg, seed, out / "eval")

    corpus = build_corpus(scenes["pretrain"] + scenes["instruct"], cfg, seed)
    (out / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")

    metrics: dict[str, float] = {}
    for split in SPLITS:
        ss = scenes[split]
        metrics[f"{split}_images"] = len(ss)
        metrics[f"{split}_objects"] = sum(len(s.objects) for s in ss)
        metrics[f"{split}_dropped_objects"] = sum(s.dropped for s in ss)
        metrics[f"{split}_same_color_images"] = sum(s.same_color for s in ss)
    patches = [v for s in all_scenes for row in s.patch_objects for v in row]
    metrics["background_patch_fraction"] = round(sum(v == 0 for v in patches) / max(1, len(patches)), 6)
    metrics["pretrain_samples"] = len(pretrain)
    metrics["instruct_samples"] = len(instruct)
    metrics.update(instruct_counts)
    metrics["caption_templates_used"] = len(caption_use)
    metrics["question_templates_used"] = len(question_use)
    metrics.update(eval_counts)
    metrics["corpus_lines"] = len(corpus)

    summary = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "config": cfg.to_dict(),
        "vocabulary": {
            "shapes": list(cfg.shapes),
            "colors": list(cfg.colors),
            "backgrounds": list(cfg.backgrounds),
            "sizes": {name: cfg.diameter(name) for name in sorted(cfg.sizes)},
            "positions": list(POSITION_WORDS),
            "rgb": {w: list(RGB[w]) for w in (*cfg.colors, *cfg.backgrounds)},
        },
        "popular_objects": [f"{c} {s}" for c, s in object_popularity(all_scenes)],
        "counts": metrics,
    }
    write_json(out / "world.json", summary)
    log.info(
        "world: %d/%d/%d images, %d eval questions",
        cfg.n_pretrain,
        cfg.n_instruct,
        cfg.n_eval,
        sum(v for k, v in eval_counts.items() if k.endswith("questions")),
    )
    return metrics
