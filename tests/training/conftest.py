"""A tiny training world built offline: random tiny CLIP and LLM, a few images, LLaVA-format pretrain and
instruct files, `prepare`-style manifests and `label`-style labels; plus the config that points at them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

WORDS = [
    "red",
    "green",
    "blue",
    "yellow",
    "circle",
    "square",
    "triangle",
    "star",
    "small",
    "large",
    "left",
    "right",
    "top",
    "bottom",
    "one",
    "two",
    "three",
    "purple",
    "white",
    "black",
]
N_PRETRAIN = 16
N_INSTRUCT = 12


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """accelerate's state is process-wide: every test starts and ends without one."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def _write_images(folder: Path, n: int, seed: int) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    names = []
    for i in range(n):
        size = (32, 32) if i % 3 else (40, 28)  # a few non-square images for image_aspect_ratio=pad
        pixels = (torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8).numpy()
        name = f"img_{seed}_{i:03d}.png"
        Image.fromarray(pixels).save(folder / name)
        names.append(f"images/{name}")
    return names


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sea.labeling.storage import ShardWriter, write_labels_dir
    from sea.models.tiny import save_tiny_llm, tiny_vision_cfg
    from sea.models.vision import VisionTower
    from sea.utils.io import write_json, write_jsonl

    root = tmp_path_factory.mktemp("tiny_world")
    vision = tiny_vision_cfg(root / "clip")
    llm_dir = save_tiny_llm(root / "llm", "llama")
    data = root / "data"
    g = torch.Generator().manual_seed(0)

    def phrase(k: int) -> str:
        idx = torch.randint(0, len(WORDS), (k,), generator=g).tolist()
        return " ".join(WORDS[i] for i in idx)

    pre_images = _write_images(data / "images", N_PRETRAIN, seed=1)
    pretrain = [
        {
            "id": f"p{i:03d}",
            "image": img,
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe the image."},
                {"from": "gpt", "value": f"a {phrase(3)} on a {phrase(1)} background"},
            ],
        }
        for i, img in enumerate(pre_images)
    ]
    ins_images = _write_images(data / "images", N_INSTRUCT, seed=2)
    instruct = []
    for i, img in enumerate(ins_images):
        turns = [
            {
                "from": "human",
                "value": f"What is the colour of the {phrase(1)}?" + ("\n<image>" if i % 4 else ""),
            },
            {"from": "gpt", "value": phrase(2)},
            {"from": "human", "value": "Is there a star?"},
            {"from": "gpt", "value": "Yes." if i % 2 else "No."},
        ]
        sample = {"id": f"q{i:03d}", "conversations": turns}
        if i % 4:
            sample["image"] = img
        instruct.append(sample)
    (data / "pretrain.json").write_text(json.dumps(pretrain), encoding="utf-8")
    (data / "instruct.json").write_text(json.dumps(instruct), encoding="utf-8")

    prepared = root / "prepared"
    for name, samples in (("pretrain", pretrain), ("instruct", instruct)):
        rows = [
            {
                "id": s["id"],
                "image": s.get("image"),
                "n_turns": len(s["conversations"]),
                "index": i,
                "line": None,
            }
            for i, s in enumerate(samples)
        ]
        write_jsonl(prepared / "manifests" / f"{name}.jsonl", rows)
    (prepared / "wordlist.txt").write_text("".join(w + "\n" for w in WORDS), encoding="utf-8")
    write_json(prepared / "_SUCCESS.json", {"stage": "prepare", "config_hash": "fixture", "metrics": {}})

    tower = VisionTower.from_config(vision)
    n, top = tower.num_patches, 4
    labels = root / "labels"
    writer = ShardWriter(labels / "shards", shard_size=8)
    ids = torch.randint(0, len(WORDS), (N_PRETRAIN, n, top), generator=g, dtype=torch.int32)
    scores = (torch.rand(N_PRETRAIN, n, top, generator=g) - 0.2).to(torch.float16)
    ids[:, ::5, 2:] = -1
    writer.add([s["id"] for s in pretrain], ids, scores)
    meta = {
        "model": tower.name,
        "grid": list(tower.grid),
        "preprocess": tower.preprocess_signature(),
        "top_n": top,
    }
    write_labels_dir(labels, meta, WORDS, writer.close())
    write_json(labels / "_SUCCESS.json", {"stage": "label", "config_hash": "fixture", "metrics": {}})
    return {
        "root": root,
        "vision": vision,
        "llm": llm_dir,
        "data": data,
        "prepared": prepared,
        "labels": labels,
    }


STAGE_SIZES = Path(__file__).with_name("stage_sizes.yaml")


def size_overrides() -> list[str]:
    """`key=value` overrides of `stage_sizes.yaml`."""
    from omegaconf import OmegaConf

    from sea.config import flatten

    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    sizes = OmegaConf.to_container(OmegaConf.load(STAGE_SIZES))
    return [f"{key}={text(value)}" for key, value in flatten(sizes).items()]


def stage_overrides(world: dict, root: Path, *extra: str) -> list[str]:
    """Hydra overrides: the tiny experiment pointed at `world`, outputs under `root`, test sizes."""
    w = world
    return [
        "experiment=tiny",
        "tracking=none",
        f"paths.root={root}",
        f"paths.prepared={w['prepared']}",
        f"paths.labels={w['labels']}",
        f"model.vision.name={w['vision']['name']}",
        f"model.vision.model_config={w['vision']['model_config']}",
        f"model.vision.pretrained={w['vision']['pretrained']}",
        f"model.llm.name_or_path={w['llm']}",
        f"data.pretrain.json={w['data'] / 'pretrain.json'}",
        f"data.pretrain.image_folder={w['data']}",
        f"data.instruct.json={w['data'] / 'instruct.json'}",
        f"data.instruct.image_folder={w['data']}",
        *size_overrides(),
        *extra,
    ]


@pytest.fixture
def overrides_for(tiny_world: dict) -> Callable[..., list[str]]:
    """`overrides_for(root, *extra)`: the override list `stage_cfg` composes (for subprocesses)."""
    return lambda root, *extra: stage_overrides(tiny_world, root, *extra)


@pytest.fixture
def stage_cfg(tiny_world: dict, tmp_path: Path) -> Callable[..., object]:
    """`stage_cfg(*overrides, root=None)`: the tiny experiment pointed at the tiny world."""
    from sea.config import compose

    def make(*overrides: str, root: Path | None = None):
        return compose(stage_overrides(tiny_world, root or tmp_path / "out", *overrides))

    return make
