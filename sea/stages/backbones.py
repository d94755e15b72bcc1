"""`backbones`: the tiny vision and language backbones of the embedded shapes world.

Embedded default (`data.source: world`): trains a tiny open_clip CLIP and a tiny Llama-architecture
causal LM on the world in `paths.world` and saves them exactly where `model.vision` and `model.llm`
read them:

- `clip/<model.vision.name>.json` (open_clip model config; register with `open_clip.add_model_config`)
  and `clip/<model.vision.name>.safetensors` (state dict; `pretrained=` of `create_model_and_transforms`);
- `llm/` (`save_pretrained` layout: config, safetensors weights, tokenizer), for `AutoModelForCausalLM`
  and `AutoTokenizer`;
- `metrics.json`: the same metrics the stage returns.

Metrics: `clip/*` (zero-shot colour / shape / object accuracy on held-out eval objects with their
chance levels, retrieval and swap accuracies, losses, timings; see `sea.backbones.clip_train`) and
`lm/*` (held-out perplexity, vocabulary size, losses, timings; see `sea.backbones.lm_train`).

Real backbones (`data.source` other than `world`): nothing is trained. The checkpoints are whatever
`model.vision` / `model.llm` name (hub ids or local paths), loaded by the model code; this stage only
checks that the local paths among them exist (a missing local path is an error naming the key),
writes the resolved references to `references.json` and returns `real/*` flags. It does not touch
the network: hub references are listed, not downloaded.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from sea.config import select
from sea.errors import SeaError
from sea.stages.base import Stage
from sea.utils.io import write_json

log = logging.getLogger(__name__)


def _expect_path(cfg: DictConfig, key: str, expected: Path) -> None:
    """`key` must point where this stage writes (else the next stages would not find the weights)."""
    value = select(cfg, key)
    if value is None or Path(value).resolve() != expected.resolve():
        raise SeaError(
            f"{key} is {value!r}, but the backbones stage writes it to {expected}; set {key} to "
            f"{expected} (the default config interpolates paths.backbones)"
        )


def build_world(cfg: DictConfig, out: Path) -> dict:
    from sea.backbones.clip_train import train_clip
    from sea.backbones.lm_train import train_lm
    from sea.tracking import current

    world = Path(select(cfg, "paths.world"))
    final = Path(select(cfg, "paths.backbones"))
    vcfg, lcfg = select(cfg, "model.vision"), select(cfg, "model.llm")
    bcfg = select(cfg, "backbones")
    name = str(vcfg["name"])
    _expect_path(cfg, "model.vision.model_config", final / "clip" / f"{name}.json")
    _expect_path(cfg, "model.vision.pretrained", final / "clip" / f"{name}.safetensors")
    _expect_path(cfg, "model.llm.name_or_path", final / "llm")
    if not (world / "world.json").is_file():
        raise SeaError(f"{world}: no generated world (world.json missing); run the `world` stage first")

    seed = int(cfg.seed)
    tracker = current()
    start = time.perf_counter()
    clip = train_clip(world, vcfg, bcfg["clip"], seed, out / "clip", tracker)
    lm = train_lm(world, lcfg, bcfg["llm"], seed, out / "llm", tracker)
    metrics = {f"clip/{k}": v for k, v in clip.items()}
    metrics.update({f"lm/{k}": v for k, v in lm.items()})
    metrics["seconds"] = time.perf_counter() - start
    write_json(out / "metrics.json", metrics)
    log.info(
        "backbones: CLIP zero-shot object %.3f (chance %.3f), colour %.3f, shape %.3f (chance %.3f); "
        "LM held-out perplexity %.2f (vocabulary %d); %.0f s",
        metrics["clip/zeroshot_object_acc"],
        metrics["clip/chance_object_acc"],
        metrics["clip/zeroshot_color_acc"],
        metrics["clip/zeroshot_shape_acc"],
        metrics["clip/chance_shape_acc"],
        metrics["lm/val_ppl"],
        int(metrics["lm/vocab_size"]),
        metrics["seconds"],
    )
    return metrics


def _is_local(ref: str) -> bool:
    """A reference that names a local file or folder (not a hub id or a pretrained tag)."""
    return ref.startswith(("/", "./", "../", "~")) or Path(ref).exists()


def build_real(cfg: DictConfig, out: Path) -> dict:
    vcfg, lcfg = select(cfg, "model.vision"), select(cfg, "model.llm")
    refs = {
        "model.vision.name": vcfg.get("name"),
        "model.vision.model_config": vcfg.get("model_config"),
        "model.vision.pretrained": vcfg.get("pretrained"),
        "model.llm.name_or_path": lcfg.get("name_or_path"),
    }
    missing = [
        f"{k}={v}"
        for k, v in refs.items()
        if k != "model.vision.name"
        and isinstance(v, str)
        and _is_local(v)
        and not Path(v).expanduser().exists()
    ]
    if missing:
        raise SeaError("backbone checkpoint path(s) not found: " + ", ".join(missing))
    local = {
        k: bool(isinstance(v, str) and _is_local(v)) for k, v in refs.items() if k != "model.vision.name"
    }
    write_json(
        out / "references.json", {"source": select(cfg, "data.source"), "references": refs, "local": local}
    )
    log.info(
        "backbones: data.source=%s, nothing to train; references: %s",
        select(cfg, "data.source"),
        json.dumps(refs),
    )
    return {
        "real/vision_pretrained_local": float(local["model.vision.pretrained"]),
        "real/llm_local": float(local["model.llm.name_or_path"]),
    }


def build(cfg: DictConfig, out: Path) -> dict:
    if select(cfg, "data.source") == "world":
        return build_world(cfg, out)
    return build_real(cfg, out)


STAGE = Stage(
    name="backbones",
    help="embedded world: train a tiny open_clip CLIP and a tiny causal LM; real data: check the checkpoints",
    params=("seed", "data.source", "backbones", "model.vision", "model.llm"),
    out="paths.backbones",
    build=build,
    deps=("paths.world",),
)
run = STAGE.run
