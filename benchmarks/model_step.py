"""Forward + backward time of `SeaMLLM` against HF `LlavaForConditionalGeneration`, same sizes.

Both models get the same vision geometry (open_clip ViT vs HF CLIPVisionModel of equal width, layers,
heads, image and patch size), the same Llama text config, an mlp2x_gelu projector, the same batch and the
same expanded sequence length. SeaMLLM gets one -200 placeholder per sample and splices; HF Llava gets N
image-token copies and `masked_scatter`s. Trainable parts follow LLaVA stage 1 (projector only) unless
`--train-llm` (stage 2: projector + LLM). Both train with `use_cache=False` (no KV cache in a training step).

Vision depth: SeaMLLM stops at LLaVA's select layer (-2, the penultimate block: L - 1 blocks run). HF Llava
with `vision_feature_layer=-2` runs all L blocks and keeps the penultimate output, so it does one block more.
`--hf-vision matched` builds HF's tower with L - 1 blocks and `vision_feature_layer=-1` (same features, same
work); `shipped` is HF Llava as configured for LLaVA-1.5 (L blocks); `both` (default) times both.
Every repeat runs each model once, the order rotated from repeat to repeat; medians are reported.

    .venv/bin/python benchmarks/model_step.py                # small CPU default, < 1 min
    .venv/bin/python benchmarks/model_step.py --device cuda --dtype bfloat16 --batch 16 --text-len 512 \
        --image-size 336 --patch 14 --vision-width 1024 --vision-layers 24 --vision-heads 16 \
        --llm-hidden 2048 --llm-layers 16 --llm-heads 16 --llm-intermediate 5632 --vocab 32000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--text-len", type=int, default=48, help="text tokens per sample (the image adds N more)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--vision-width", type=int, default=192)
    p.add_argument("--vision-layers", type=int, default=4)
    p.add_argument("--vision-heads", type=int, default=4)
    p.add_argument("--llm-hidden", type=int, default=128)
    p.add_argument("--llm-layers", type=int, default=4)
    p.add_argument("--llm-heads", type=int, default=4)
    p.add_argument("--llm-intermediate", type=int, default=344)
    p.add_argument("--vocab", type=int, default=2000)
    p.add_argument("--train-llm", action="store_true", help="also train the LLM (stage 2)")
    p.add_argument(
        "--hf-vision",
        default="both",
        choices=["matched", "shipped", "both"],
        help="HF tower depth: L - 1 blocks (same work as ours), L blocks (as shipped), or both",
    )
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 keeps shared CPUs steady (0: torch default)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_sea(args: argparse.Namespace, workdir: Path, text_config) -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    from sea.models.adapter import build_adapter
    from sea.models.mllm import SeaMLLM
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    vcfg = tiny_vision_cfg(
        workdir,
        name="bench-clip",
        image_size=args.image_size,
        patch_size=args.patch,
        width=args.vision_width,
        layers=args.vision_layers,
        heads=args.vision_heads,
    )
    vision = VisionTower.from_config(vcfg)
    llm = LlamaForCausalLM(text_config)
    adapter = build_adapter("mlp2x_gelu", vision.hidden_size, args.llm_hidden)
    return SeaMLLM(vision, adapter, llm, None, max_length=None)


def hf_llava(
    text_config: Any,
    width: int,
    mlp: int,
    layers: int,
    heads: int,
    image_size: int,
    patch: int,
    matched: bool,
    attn: str | None = None,
) -> torch.nn.Module:
    """HF Llava with a CLIP tower of `layers` blocks; `matched`: L - 1 blocks and the last one's output
    (what SeaMLLM computes), else L blocks and the penultimate output (LLaVA-1.5's HF config, one block
    of wasted work). The image token is the vocabulary's last id."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    vision_config = CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=mlp,
        num_hidden_layers=layers - 1 if matched else layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch,
        hidden_act="gelu",  # open_clip's tower without OpenAI weights uses nn.GELU
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_id=text_config.vocab_size - 1,
        vision_feature_layer=-1 if matched else -2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        image_seq_length=(image_size // patch) ** 2,
    )
    extra = {"attn_implementation": attn} if attn else {}
    return LlavaForConditionalGeneration._from_config(config, **extra)


def build_hf(args: argparse.Namespace, text_config, matched: bool) -> torch.nn.Module:
    w = args.vision_width
    return hf_llava(
        text_config, w, 4 * w, args.vision_layers, args.vision_heads, args.image_size, args.patch, matched
    )


def set_trainable_hf(hf: torch.nn.Module, train_llm: bool) -> None:
    hf.requires_grad_(False)
    hf.model.multi_modal_projector.requires_grad_(True)
    if train_llm:
        hf.model.language_model.requires_grad_(True)
        hf.lm_head.requires_grad_(True)


def make_batches(args: argparse.Namespace, n: int) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(args.seed)
    text = torch.randint(3, args.vocab - 1, (args.batch, args.text_len), generator=g)
    pixels = torch.randn(args.batch, 3, args.image_size, args.image_size, generator=g)
    # SeaMLLM: BOS-like first token, then one placeholder, then the text.
    sea_ids = torch.cat([text[:, :1], torch.full((args.batch, 1), IMAGE_TOKEN_INDEX), text[:, 1:]], dim=1)
    sea_labels = sea_ids.masked_fill(sea_ids == IMAGE_TOKEN_INDEX, IGNORE_INDEX)
    sea = {
        "input_ids": sea_ids,
        "labels": sea_labels,
        "attention_mask": torch.ones_like(sea_ids),
        "images": pixels,
    }
    # HF Llava: the processor has already expanded the placeholder into N image tokens.
    hf_ids = torch.cat([text[:, :1], torch.full((args.batch, n), args.vocab - 1), text[:, 1:]], dim=1)
    hf_labels = hf_ids.masked_fill(hf_ids == args.vocab - 1, IGNORE_INDEX)
    hf = {
        "input_ids": hf_ids,
        "labels": hf_labels,
        "attention_mask": torch.ones_like(hf_ids),
        "pixel_values": pixels,
        "use_cache": False,
    }
    return sea, hf


def timed_step(model: torch.nn.Module, batch: dict, device: torch.device) -> float:
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    loss = model(**batch).loss
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    for p in model.parameters():
        p.grad = None
    return elapsed * 1000.0


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from sea.models.tiny import tiny_llm_config

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    n = (args.image_size // args.patch) ** 2
    text_config = tiny_llm_config(
        "llama",
        vocab_size=args.vocab,
        hidden_size=args.llm_hidden,
        num_hidden_layers=args.llm_layers,
        num_attention_heads=args.llm_heads,
        intermediate_size=args.llm_intermediate,
        max_position_embeddings=max(512, args.text_len + n + 8),
    )
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        sea = build_sea(args, Path(tmp), text_config)
    sea.set_trainable(adapter=True, llm=args.train_llm)
    depths = {"matched": [True], "shipped": [False], "both": [True, False]}[args.hf_vision]
    models: dict[str, torch.nn.Module] = {"SeaMLLM": sea}
    for matched in depths:
        hf = build_hf(args, text_config, matched)
        set_trainable_hf(hf, args.train_llm)
        blocks = args.vision_layers - 1 if matched else args.vision_layers
        models[f"HF Llava ({blocks} vision blocks{', matched' if matched else ', as shipped'})"] = hf
    for m in models.values():
        m.to(device=device, dtype=dtype)
        m.train()
    sea_batch, hf_batch = make_batches(args, n)
    sea_batch["images"] = sea_batch["images"].to(dtype)
    hf_batch["pixel_values"] = hf_batch["pixel_values"].to(dtype)

    def count(m: torch.nn.Module, trainable: bool) -> int:
        if m is sea:  # the tower's image side only: open_clip also holds a text tower the step never runs
            return sum(count(part, trainable) for part in (sea.vision.visual, sea.adapter, sea.llm))
        return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable)

    print(
        f"device={device} dtype={args.dtype} threads={torch.get_num_threads()} batch={args.batch} "
        f"seq={args.text_len + n} (text {args.text_len} + {n} visual) stage={'2' if args.train_llm else '1'} "
        f"use_cache=False; SeaMLLM runs {args.vision_layers - 1} of {args.vision_layers} vision blocks"
    )
    print(
        "params: "
        + ", ".join(f"{k} {count(m, False):,} ({count(m, True):,} trainable)" for k, m in models.items())
    )
    steps: dict[str, Callable[[], float]] = {
        name: (lambda m=m, b=(sea_batch if m is sea else hf_batch): timed_step(m, b, device))
        for name, m in models.items()
    }
    names = list(steps)
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(steps[name]())
    result = {name: statistics.median(t) for name, t in times.items()}
    width = max(len(k) for k in names)
    for name, t in times.items():
        print(
            f"{name:{width}s} {statistics.median(t):9.1f} ms/step "
            f"(median of {len(t)}, order rotated; min {min(t):.1f}, max {max(t):.1f})"
        )
    for name in names[1:]:
        ratio = result["SeaMLLM"] / result[name]
        fastest = min(times["SeaMLLM"]) / min(times[name])  # interference only adds time: robust when shared
        print(f"ratio SeaMLLM / {name} = {ratio:.3f} (medians), {fastest:.3f} (minima)")
        result["ratio_matched" if "matched" in name else "ratio_shipped"] = ratio
    return result


if __name__ == "__main__":
    main()
