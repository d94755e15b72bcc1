"""Stage-1 step time with the SEA loss (lambda = 1) against without it (lambda = 0, the baseline arm).

All arms train the same `SeaMLLM` (random weights, frozen tower and LLM, trainable adapter) through the
training code's `AlignModule` on the same batches: forward, backward, AdamW step. Four arms, each with its
own optimizer, run once per repeat in an order rotated from repeat to repeat; medians are compared:

- `baseline`   lambda = 0;
- `baseline'`  the same again: baseline' / baseline is the noise of the measurement;
- `sea_inline` lambda = 1, pairs sampled inside the timed step (what `num_workers=0` pays, the CPU preset);
- `sea`        lambda = 1, pairs sampled before the step (as DataLoader workers deliver them, pinned on
               CUDA): what a GPU run with workers pays on the training process.

The clock starts after the host-to-device copy of the batch (ids, labels, mask, images), which every arm
pays alike; everything SEA adds (sampling for `sea_inline`, the pairs' copy, the loss) is inside it.

    .venv/bin/python benchmarks/sea_overhead.py                      # CPU, the tiny config's sizes
    .venv/bin/python benchmarks/sea_overhead.py --device cuda        # real sizes: CLIP-L/14-336 tower
        (576 patches x 1024), Vicuna-7B-sized LLM (4096 x 32 layers), mlp2x_gelu adapter, batch 16, bf16

Goals: ratio <= 1.10 on the CPU tiny config; <= 1.03 with `--device cuda` at real sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

SIZES: dict[str, dict[str, Any]] = {
    # conf/model/vision/tiny_clip.yaml + conf/model/llm/tiny_llama.yaml
    "tiny": dict(
        image_size=64,
        patch=8,
        vision_width=192,
        vision_layers=4,
        vision_heads=4,
        llm_hidden=128,
        llm_layers=4,
        llm_heads=4,
        llm_intermediate=344,
        vocab=2000,
        words=2000,
        batch=32,
        text_len=24,
    ),
    # CLIP ViT-L/14-336 (penultimate layer: 576 x 1024) + Vicuna-7B (Llama-2-7B shape)
    "real": dict(
        image_size=336,
        patch=14,
        vision_width=1024,
        vision_layers=24,
        vision_heads=16,
        llm_hidden=4096,
        llm_layers=32,
        llm_heads=32,
        llm_intermediate=11008,
        vocab=32000,
        words=50000,
        batch=16,
        text_len=40,
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--size", choices=sorted(SIZES), help="model sizes (default: tiny on CPU, real on CUDA)")
    p.add_argument("--batch", type=int, help="per-device batch (default: the size's)")
    p.add_argument(
        "--llm-layers", type=int, help="override the LLM depth (a shallower LLM overstates the overhead)"
    )
    p.add_argument("--top-n", type=int, default=10)
    p.add_argument("--repeats", type=int, default=16)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batches", type=int, default=3, help="distinct batches cycled through")
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on for CUDA (LLaVA), off on CPU",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_mllm(s: dict[str, Any], device: str, dtype: torch.dtype, workdir: Path) -> Any:
    """A random SeaMLLM of the given sizes (no files but a tiny open_clip config JSON)."""
    import json

    from transformers import AutoModelForCausalLM

    from sea.models.adapter import build_adapter
    from sea.models.mllm import SeaMLLM
    from sea.models.tiny import tiny_llm_config, tiny_open_clip_config, tiny_tokenizer
    from sea.models.vision import VisionTower

    name = f"bench-clip-{s['image_size']}-{s['vision_width']}"
    clip_cfg = tiny_open_clip_config(
        image_size=s["image_size"],
        patch_size=s["patch"],
        width=s["vision_width"],
        layers=s["vision_layers"],
        heads=s["vision_heads"],
        text_width=64,
        text_layers=1,
        text_heads=2,
        embed_dim=64,
    )
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(clip_cfg), encoding="utf-8")
    vision = VisionTower.from_config(
        {"name": name, "model_config": str(path), "pretrained": None}, device=device
    )
    tok = tiny_tokenizer("llama")
    config = tiny_llm_config(
        "llama",
        vocab_size=s["vocab"],
        hidden_size=s["llm_hidden"],
        num_hidden_layers=s["llm_layers"],
        num_attention_heads=s["llm_heads"],
        intermediate_size=s["llm_intermediate"],
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.unk_token_id,
    )
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(config, dtype=dtype)
    adapter = build_adapter("mlp2x_gelu", vision.hidden_size, s["llm_hidden"]).to(device)
    tok.pad_token = tok.unk_token
    return SeaMLLM(vision, adapter, llm, tok, max_length=4096)


def make_batches(s: dict[str, Any], n_batches: int, top_n: int, tok: Any, gen: torch.Generator) -> list[dict]:
    """Plain-template stage-1 batches (BOS, image, caption, labels on the caption) with random labels."""
    from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX

    n = (s["image_size"] // s["patch"]) ** 2
    batches = []
    for b in range(n_batches):
        rows = s["batch"]
        caption = torch.randint(4, len(tok), (rows, s["text_len"]), generator=gen)
        ids = torch.cat(
            [torch.full((rows, 1), tok.bos_token_id), torch.full((rows, 1), IMAGE_TOKEN_INDEX), caption], 1
        )
        labels = ids.clone()
        labels[:, :2] = IGNORE_INDEX
        label_ids = torch.randint(0, s["words"], (rows, n, top_n), generator=gen, dtype=torch.int32)
        scores = (torch.rand(rows, n, top_n, generator=gen) * 0.4 - 0.1).half()  # some <= 0: dropped
        batches.append(
            {
                "index": torch.arange(b * rows, (b + 1) * rows),
                "input_ids": ids,
                "labels": labels,
                "attention_mask": torch.ones_like(ids),
                "images": torch.randn(rows, 3, s["image_size"], s["image_size"], generator=gen),
                "label_ids": label_ids,
                "label_scores": scores,
            }
        )
    return batches


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        raise SystemExit(2)
    size = args.size or ("real" if device.startswith("cuda") else "tiny")
    s = dict(SIZES[size])
    if args.batch:
        s["batch"] = args.batch
    if args.llm_layers:
        s["llm_layers"] = args.llm_layers
    cuda = device.startswith("cuda")
    mixed = torch.bfloat16 if cuda else torch.float32
    checkpointing = cuda if args.gradient_checkpointing is None else args.gradient_checkpointing
    torch.manual_seed(args.seed)

    from sea.training.data import Collator
    from sea.training.modules import AlignModule
    from sea.training.optim import ParamGroupSpec, build_optimizer, param_groups
    from sea.training.sea_loss import SeaLoss, SeaSettings, image_uniforms, label_embedding_table

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        mllm = build_mllm(s, device, mixed, Path(tmp))
    mllm.set_trainable(adapter=True, llm=False)
    mllm.vision.to(mixed)
    if checkpointing:
        mllm.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mllm.train()
    words = [f"w{i:05d}x{'abcdefghij'[i % 10]}" for i in range(s["words"])]
    table, word_ok = label_embedding_table(mllm.llm.get_input_embeddings(), mllm.tokenizer, words)
    sea_settings = SeaSettings()
    sea = SeaLoss(sea_settings, table).to(device)
    arms = {"baseline": AlignModule(mllm, None, 0.0), "sea": AlignModule(mllm, sea, 1.0)}
    opts = {
        "baseline": build_optimizer(
            param_groups([ParamGroupSpec("adapter", mllm.adapter)], 1e-3, 0.0), (0.9, 0.999), 1e-8
        ),
        "sea": build_optimizer(
            param_groups(
                [ParamGroupSpec("adapter", mllm.adapter), ParamGroupSpec("s", [sea.logit_scale])], 1e-3, 0.0
            ),
            (0.9, 0.999),
            1e-8,
        ),
    }
    gen = torch.Generator().manual_seed(args.seed)
    n = mllm.vision.num_patches
    batches = make_batches(s, args.batches, args.top_n, mllm.tokenizer, gen)
    collate = Collator(mllm.tokenizer.pad_token_id, mllm.vision.grid, sea_settings, word_ok)
    build_s = time.perf_counter() - t0

    def sample(batch: dict, epoch: int) -> Any:
        from sea.training.sea_loss import sample_pairs

        uniforms = torch.stack([image_uniforms(args.seed, epoch, int(i), n) for i in batch["index"]])
        return sample_pairs(
            batch["label_ids"],
            batch["label_scores"],
            uniforms,
            mllm.vision.grid,
            sea_settings,
            collate.table,
            word_ok,
        )

    def to_device(batch: dict) -> dict:
        keys = ("input_ids", "labels", "attention_mask", "images")
        return {k: batch[k].to(device, non_blocking=True) for k in keys}

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step(arm: str, batch: dict, epoch: int) -> tuple[float, float]:
        """(seconds of the step, seconds of its inline sampling); the clock starts after the copy."""
        dev = to_device(batch)
        sync()
        start = time.perf_counter()
        sampled = 0.0
        if arm == "sea_inline":
            dev["sea_pairs"] = sample(batch, epoch)
            sampled = time.perf_counter() - start
        elif arm == "sea":
            dev["sea_pairs"] = batch["_pairs"]
        with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=mixed, enabled=cuda):
            loss, _ = modules[arm](dev)
        loss.backward()
        opts[arm].step()
        opts[arm].zero_grad(set_to_none=True)
        modules[arm].after_optimizer_step()
        sync()
        return time.perf_counter() - start, sampled

    modules = {
        "baseline": arms["baseline"],
        "baseline'": AlignModule(mllm, None, 0.0),
        "sea_inline": arms["sea"],
        "sea": arms["sea"],
    }
    opts["baseline'"] = build_optimizer(
        param_groups([ParamGroupSpec("adapter", mllm.adapter)], 1e-3, 0.0), (0.9, 0.999), 1e-8
    )
    opts["sea_inline"] = opts["sea"]
    names = list(modules)
    times: dict[str, list[float]] = {arm: [] for arm in names}
    sampling: list[float] = []
    for r in range(args.warmup + args.repeats):
        batch = batches[r % len(batches)]
        pairs = sample(batch, r)  # as the DataLoader's workers deliver them
        batch["_pairs"] = pairs.pin_memory() if cuda else pairs
        shift = r % len(names)
        for arm in names[shift:] + names[:shift]:
            seconds, sampled = step(arm, batch, r)
            if r >= args.warmup:
                times[arm].append(seconds)
                if arm == "sea_inline":
                    sampling.append(sampled)

    med = {arm: statistics.median(t) for arm, t in times.items()}
    base = med["baseline"]
    ratios = {
        "noise": med["baseline'"] / base,
        "inline": med["sea_inline"] / base,
        "workers": med["sea"] / base,
    }
    samp = statistics.median(sampling)
    pairs = len(batches[0]["_pairs"])
    print(
        f"device {device} ({torch.cuda.get_device_name() if cuda else 'cpu'}), size {size}: "
        f"vision {s['image_size']}px/{s['patch']} ({n} patches x {s['vision_width']}, "
        f"{s['vision_layers']} layers), LLM {s['llm_hidden']} x {s['llm_layers']} layers, "
        f"batch {s['batch']}, {s['text_len']} caption tokens, "
        f"{s['words']} words, top-{args.top_n} labels, {pairs} SEA pairs per batch, "
        f"{'bf16 autocast' if cuda else 'fp32'}, gradient checkpointing {'on' if checkpointing else 'off'}, "
        f"threads {torch.get_num_threads()}, build {build_s:.1f} s"
    )
    print(
        f"step, median of {args.repeats} (order rotated), clock after the batch's host-to-device copy: "
        + ", ".join(f"{arm} {med[arm] * 1e3:.1f} ms" for arm in names)
        + f" (sea_inline's pair sampling {samp * 1e3:.2f} ms)"
    )
    print(
        f"ratios to baseline: baseline' (noise) {ratios['noise']:.3f}, "
        f"SEA sampling inline (num_workers=0) {ratios['inline']:.3f}, "
        f"SEA pre-sampled (DataLoader workers) {ratios['workers']:.3f}"
    )
    headline = ratios["workers"] if cuda else ratios["inline"]
    goal = 1.03 if size == "real" else 1.10
    print(
        f"overhead ratio {headline:.3f} (goal <= {goal:.2f}, noise {abs(ratios['noise'] - 1):.1%}): "
        f"{'OK' if headline <= goal else 'ABOVE GOAL'}"
    )
    return {"ms": {arm: v * 1e3 for arm, v in med.items()}, "sampling_ms": samp * 1e3, **ratios}


if __name__ == "__main__":
    main()
