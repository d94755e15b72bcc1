"""`prepare`: validate and index the datasets (LLaVA formats) and build the word list.

Outputs under `paths.prepared`:

- `manifests/<dataset>.jsonl`: one row per kept sample, for `pretrain`, `instruct` and `eval_<name>`;
  with `data.pretrain.holdout` = N, the last N kept pretrain samples go to `pretrain_heldout.jsonl`
  instead (no stage trains on them: the alignment diagnostics' images);
- `report.json`: per dataset the file, totals, skips by kind and the first problems; the word list's
  make-up (`wordlist`, with `lemmatized`: how `label` reads the captions against it);
- `wordlist.txt`: the word list W, one word a line (captions = the gpt turns of the kept pretrain
  samples; see `sea.data.wordlist`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sea.config import select
from sea.errors import SeaError
from sea.layout import HELD_OUT, manifest_path
from sea.stages.base import Stage
from sea.utils.settings import require, settings_from

log = logging.getLogger(__name__)

REPORT_PROBLEMS = 20
# The `data` sections prepare reads (`data.world` reaches it only through the world's files).
DATA_KEYS = ("source", "pretrain", "instruct", "eval_sets", "validation", "wordlist")


@dataclass(frozen=True)
class Validation:
    """`data.validation` (conf/data/*.yaml explains every value)."""

    on_error: str
    check_images: bool
    unique_ids: Any  # dataset (pretrain, instruct, eval) -> whether its ids must be unique
    max_problems: int
    max_chars: int

    def __post_init__(self) -> None:
        require(
            self.on_error in ("fail", "skip"), "data.validation.on_error", "'fail' or 'skip'", self.on_error
        )

    @classmethod
    def from_config(cls, section: Any) -> Validation:
        return settings_from(cls, section, "data.validation")


@dataclass(frozen=True)
class WordlistSettings:
    """`data.wordlist` (conf/data/*.yaml explains every value)."""

    size: int
    min_caption_count: int
    frequent_source: str
    lang: str
    min_length: int
    keep: Any  # words
    allow: Any
    block: Any
    lemmatize: bool


def _validation_options(data: dict) -> dict[str, Any]:
    return asdict(Validation.from_config(data.get("validation")))


def validate_all(data: dict, benchmarks: list[str] | None = None) -> dict:
    """Validate pretrain, instruct and the eval sets with a question file (those named in `benchmarks`,
    `eval.benchmarks`, when given: data.eval_sets lists every benchmark LLaVA's layout has, but only the
    evaluated ones need to be on disk); results by dataset name."""
    from sea.data.validate import validate_conversations, validate_eval_set

    opts = _validation_options(data)
    common = {
        "on_error": opts["on_error"],
        "check_images": opts["check_images"],
        "max_problems": opts["max_problems"],
    }
    results = {}
    for name in ("pretrain", "instruct"):
        spec = data[name]
        results[name] = validate_conversations(
            spec["json"],
            spec.get("image_folder"),
            schema=name,
            unique_ids=opts["unique_ids"][name],
            max_chars=opts["max_chars"],
            **common,
        )
    for name, spec in sorted((data.get("eval_sets") or {}).items()):
        if benchmarks is not None and name not in benchmarks:
            continue
        if not spec or spec.get("questions") is None:
            log.info("eval set %s: no question file configured, skipped", name)
            continue
        results[f"eval_{name}"] = validate_eval_set(spec, unique_ids=opts["unique_ids"]["eval"], **common)
    for name, result in results.items():
        if result.total and not result.kept:  # a wrong image_folder, not a few bad samples
            raise SeaError(f"{name}: all {result.total} samples were skipped; first: {result.problems[0]}")
    return results


def world_vocabulary(cfg: DictConfig) -> list[str]:
    """The shapes world's vocabulary (`<paths.world>/world.json`, field `vocabulary`), or [] if absent."""
    world = select_or_none(cfg, "paths.world")
    path = Path(world) / "world.json" if world else None
    if path is None or not path.is_file():
        log.info("no world.json at %s: word list without the world vocabulary", path)
        return []
    vocab = json.loads(path.read_text(encoding="utf-8")).get("vocabulary")
    words = list(_strings(vocab))
    if not words:
        log.warning("%s has no 'vocabulary' strings", path)
    return words


def _strings(value: Any) -> Iterator[str]:
    """The words of a vocabulary value: strings, strings in lists, and the keys of word -> value maps
    (world.json's `sizes` and `rgb`); the top-level field names are not words."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            if isinstance(v, dict):
                yield from (k for k in v if isinstance(k, str))
            else:
                yield from _strings(v)


def select_or_none(cfg: DictConfig, key: str) -> Any:
    """`select`, or None when the key is missing."""
    try:
        return select(cfg, key)
    except KeyError:
        return None


def captions_of(samples: list[dict]) -> list[str]:
    """The gpt turns of conversation samples."""
    return [turn["value"] for s in samples for turn in s["conversations"] if turn.get("from") == "gpt"]


def build(cfg: DictConfig, out: Path) -> dict:
    from sea.data.wordlist import build_wordlist_detailed
    from sea.utils.io import write_json, write_jsonl

    data = {key: select(cfg, f"data.{key}") for key in DATA_KEYS}
    results = validate_all(data, list(select(cfg, "eval.benchmarks")))
    metrics: dict[str, int | float] = {}
    report: dict[str, Any] = {"validation": _validation_options(data), "datasets": {}}
    holdout = int((data.get("pretrain") or {}).get("holdout") or 0)
    for name, result in results.items():
        rows = result.rows
        if name == "pretrain" and holdout > 0:  # images neither stage trains on, for the diagnostics
            if holdout >= len(rows):
                raise SeaError(f"data.pretrain.holdout={holdout} leaves none of {len(rows)} pretrain samples")
            rows, held = rows[:-holdout], rows[-holdout:]
            write_jsonl(manifest_path(out, HELD_OUT), held)
            metrics["pretrain/held_out"] = len(held)
        write_jsonl(manifest_path(out, name), rows)
        report["datasets"][name] = result.summary(REPORT_PROBLEMS)
        metrics.update(result.metrics(name))
        if name in ("pretrain", "instruct"):
            metrics[f"{name}/with_image"] = sum(row["image"] is not None for row in result.rows)

    wl = settings_from(WordlistSettings, data.get("wordlist"), "data.wordlist")
    keep = list(wl.keep or [])
    if data.get("source") == "world":
        keep += world_vocabulary(cfg)
    wordlist = build_wordlist_detailed(
        captions_of(results["pretrain"].samples),
        size=wl.size,
        min_caption_count=wl.min_caption_count,
        frequent_source=wl.frequent_source,
        lang=wl.lang,
        min_length=wl.min_length,
        keep=keep,
        allow=wl.allow or (),
        block=wl.block or (),
        lemmatize=wl.lemmatize,
    )
    (out / "wordlist.txt").write_text("".join(w + "\n" for w in wordlist.words), encoding="utf-8")
    report["wordlist"] = {
        "size": len(wordlist.words),
        "from_captions": wordlist.from_captions,
        "from_keep": wordlist.from_keep,
        "from_frequent": wordlist.from_frequent,
        "lemmatized": wl.lemmatize,
    }
    write_json(out / "report.json", report)
    metrics.update({f"wordlist/{k}": int(v) for k, v in report["wordlist"].items()})
    log.info("prepare: %s", ", ".join(f"{n}: kept {r.kept}/{r.total}" for n, r in results.items()))
    return metrics


STAGE = Stage(
    name="prepare",
    help="validate and index the datasets (LLaVA formats), build the word list",
    params=(*(f"data.{key}" for key in DATA_KEYS), "eval.benchmarks"),
    out="paths.prepared",
    build=build,
    deps=("data.pretrain.json", "data.instruct.json"),
)
run = STAGE.run
