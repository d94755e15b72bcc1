"""Labeling throughput: the batched path (`Labeler.label_batch`) against a naive per-image, per-patch loop
on the same inputs, and (with CUDA) the MFU of labeling with open_clip ViT-L-14-336 at batch 256 in bf16.

Part 1 (always): a random tiny CLIP of the embedded default's size (64 px, patch 8, width 192, 4 layers,
embed 128), random images, a random normalised word matrix (the text side is computed once and cached,
so it is not part of throughput). Both paths compute the same labels (checked); images/s and the ratio
are printed. Data loading is excluded from both.

Part 2 (CUDA, or `--mfu`): ViT-L-14-336 with random weights, batch 256, bf16 (autocast over fp32 weights,
as the stage runs; `--pure-bf16` casts the weights). FLOPs are counted analytically per image, with
T = N + 1 tokens, width D, MLP width M, L blocks, joint dim E, q words, patch p:

    patch embed  2 N (3 p^2) D
    block        8 T D^2 (qkv + out) + 4 T^2 D (scores + weighted sum) + 4 T D M (MLP)
    proj         L blocks, then 2 N D E (ln_post + proj)
    maskclip     L - 1 blocks, the value path 4 T D^2, then 2 N D E
    scoring      2 N E q

MFU = FLOPs per image x images/s / peak bf16 dense FLOP/s (H100 SXM / H200: 989.4 TFLOP/s; `--peak-tflops`).

    .venv/bin/python benchmarks/label_throughput.py                  # part 1 on CPU, < 1 min
    .venv/bin/python benchmarks/label_throughput.py --mfu-only       # part 2 only (GPU), ~1 min
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from sea.labeling.labeler import Labeler, LabelSettings  # noqa: E402
from sea.labeling.patches import patch_features  # noqa: E402
from sea.labeling.scoring import EMPTY_ID, SIGNS, BackgroundFilter  # noqa: E402

PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=64, help="images for part 1")
    p.add_argument("--batch", type=int, default=64, help="batch of the batched path in part 1")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--words", type=int, default=2000, help="word list size (q)")
    p.add_argument("--top-n", type=int, default=10)
    p.add_argument("--feature", default="maskclip", choices=["proj", "maskclip"])
    p.add_argument("--sign", default="cosine", choices=list(SIGNS))
    p.add_argument("--background", default="mean_sim", choices=["none", "margin", "mean_sim"])
    p.add_argument("--margin", type=float, default=0.0, help="margin of the `margin` filter")
    p.add_argument("--threshold", type=float, default=0.9, help="threshold of the `mean_sim` filter")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mfu", action="store_true", help="run part 2 even without CUDA (slow on CPU)")
    p.add_argument("--mfu-only", action="store_true", help="skip part 1")
    p.add_argument("--mfu-batch", type=int, default=256)
    p.add_argument("--mfu-words", type=int, default=50000, help="q for part 2 (LLaVA word list size)")
    p.add_argument("--mfu-repeats", type=int, default=5)
    p.add_argument("--chunk-elems", type=int, default=1 << 26, help="patches x words per scoring chunk")
    p.add_argument("--pure-bf16", action="store_true", help="bf16 weights instead of autocast")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 dense TFLOP/s of the device")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_text(q: int, dim: int, device: torch.device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(q, dim, generator=g), dim=-1).to(device)


@torch.no_grad()
def naive_labels(
    tower, images: torch.Tensor, text: torch.Tensor, s: LabelSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image at a time, one patch at a time (the straightforward reading of Eq. 8)."""
    sign = SIGNS[s.sign]
    all_ids, all_scores = [], []
    flt = s.background
    for img in images:
        feats = patch_features(tower, img[None], s.feature)[0]
        mean = torch.nn.functional.normalize(feats.mean(0), dim=0)
        tops = []
        for v in feats:
            sim = sign * (text @ v)
            tops.append(sim.topk(s.top_n))
        mean_best = sum(float(t.values[0]) for t in tops) / len(tops)
        for v, t in zip(feats, tops, strict=True):
            if flt.mode == "margin":
                background = float(t.values[0]) - mean_best <= flt.margin
            elif flt.mode == "mean_sim":
                background = float(v @ mean) > flt.threshold
            else:
                background = False
            ids = [
                int(i) if (float(v) > s.min_score and not background) else EMPTY_ID
                for v, i in zip(t.values, t.indices, strict=True)
            ]
            all_ids.append(ids)
            all_scores.append([float(v) if i >= 0 else 0.0 for v, i in zip(t.values, ids, strict=True)])
    n = tower.num_patches
    return (
        torch.tensor(all_ids, dtype=torch.int32).reshape(len(images), n, -1),
        torch.tensor(all_scores).half().reshape(len(images), n, -1),
    )


def timed(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def part1(args: argparse.Namespace) -> None:
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        vcfg = tiny_vision_cfg(
            tmp,
            name="bench-label-clip",
            image_size=args.image_size,
            patch_size=args.patch,
            width=args.width,
            layers=args.layers,
            heads=args.heads,
            embed_dim=args.embed_dim,
            text_width=64,
            text_layers=1,
            context_length=16,
        )
        tower = VisionTower.from_config(vcfg, device=device)
    text = random_text(args.words, tower.embed_dim, device, args.seed)
    settings = LabelSettings(
        top_n=args.top_n,
        feature=args.feature,
        sign=args.sign,
        batch_size=args.batch,
        background=BackgroundFilter(args.background, margin=args.margin, threshold=args.threshold),
    )
    words = [f"w{i}" for i in range(args.words)]
    labeler = Labeler(tower, text, words, settings)
    g = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.images, 3, args.image_size, args.image_size, generator=g).to(device)

    def batched() -> tuple[torch.Tensor, torch.Tensor]:
        outs = [labeler.label_batch(images[i : i + args.batch]) for i in range(0, len(images), args.batch)]
        return torch.cat([o[0] for o in outs]).cpu(), torch.cat([o[1] for o in outs]).cpu()

    t_batched, (ids_b, sc_b) = timed(batched, args.repeats, device)
    t_naive, (ids_n, sc_n) = timed(lambda: naive_labels(tower, images, text, settings), 1, device)
    same_ids = float((ids_b == ids_n).float().mean())
    max_diff = float((sc_b.float() - sc_n.float()).abs().max())
    n = tower.num_patches
    print(
        f"part 1: {args.images} images {args.image_size}px, patch {args.patch} ({n} patches), "
        f"width {args.width}, {args.layers} layers, embed {tower.embed_dim}, q={args.words} words, "
        f"top-{args.top_n}, feature={args.feature}, sign={args.sign}, "
        f"background={settings.background.name()}, device={device}, threads={torch.get_num_threads()}"
    )
    print(f"  batched (batch {args.batch}): {args.images / t_batched:10.1f} images/s  ({t_batched:.3f} s)")
    print(f"  naive per-image, per-patch:  {args.images / t_naive:10.1f} images/s  ({t_naive:.3f} s)")
    print(
        f"  ratio batched / naive: {t_naive / t_batched:.1f}x; "
        f"same ids {same_ids:.4%}, max score diff {max_diff:.2e}"
    )


def vit_flops(
    n: int, d: int, m: int, layers: int, e: int, q: int, patch: int, feature: str
) -> dict[str, float]:
    """Analytical forward FLOPs per image (multiply-add = 2 FLOPs), by part."""
    t = n + 1
    block = 8 * t * d * d + 4 * t * t * d + 4 * t * d * m
    full = layers if feature == "proj" else layers - 1
    parts = {
        "patch_embed": 2 * n * 3 * patch * patch * d,
        "blocks": full * block,
        "value_path": 4 * t * d * d if feature == "maskclip" else 0,
        "ln_post_proj": 2 * n * d * e,
        "scoring": 2 * n * e * q,
    }
    parts["total"] = sum(parts.values())
    return parts


def peak_tflops(args: argparse.Namespace) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_TFLOPS.items():
        if all(part in name for part in key.split()):
            return value
    return None


def part2(args: argparse.Namespace) -> None:
    import open_clip

    from sea.models.vision import VisionTower

    device = torch.device(args.device)
    name = "ViT-L-14-336"
    clip = open_clip.create_model(
        name, pretrained=None, precision="bf16" if args.pure_bf16 else "fp32", device=device
    )
    cfg = open_clip.get_model_config(name)
    tower = VisionTower(
        clip, name=name, model_cfg=cfg, preprocess=lambda x: x, tokenizer=open_clip.get_tokenizer(name)
    )
    v = cfg["vision_cfg"]
    d, layers, patch = int(v["width"]), int(v["layers"]), int(v["patch_size"])
    m = int(d * float(v.get("mlp_ratio", 4.0)))
    n, e, q, b = tower.num_patches, tower.embed_dim, args.mfu_words, args.mfu_batch
    text = random_text(q, e, device, args.seed)
    words = [f"w{i}" for i in range(q)]
    g = torch.Generator().manual_seed(args.seed)
    images = torch.randn(b, 3, tower.image_size[0], tower.image_size[1], generator=g).to(device)
    if args.pure_bf16:
        images = images.bfloat16()
    peak = peak_tflops(args)
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    precision = "bf16 weights" if args.pure_bf16 else "fp32 weights + bf16 autocast"
    print(f"part 2: {name} (random weights) on {dev_name}; {precision}")
    print(
        f"  inputs: batch B={b}, patches N={n} (T=N+1={n + 1} tokens), width D={d}, MLP M={m}, "
        f"blocks L={layers}, joint dim E={e}, words q={q}, patch p={patch}, top-n={args.top_n}, "
        f"scoring chunk {args.chunk_elems} elements; peak bf16 = {peak} TFLOP/s"
    )
    for feature in ("proj", "maskclip"):
        settings = LabelSettings(
            top_n=args.top_n,
            feature=feature,
            sign="cosine",
            batch_size=b,
            chunk_elems=args.chunk_elems,
            background=BackgroundFilter("mean_sim", threshold=0.9),
        )
        labeler = Labeler(tower, text, words, settings, mixed_precision="bf16")
        seconds, _ = timed(lambda lab=labeler: lab.label_batch(images), args.mfu_repeats, device)
        flops = vit_flops(n, d, m, layers, e, q, patch, feature)
        ips = b / seconds
        achieved = flops["total"] * ips
        parts = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items() if k != "total")
        mfu = f"MFU {achieved / (peak * 1e12):.1%}" if peak else "MFU n/a (give --peak-tflops)"
        print(
            f"  {feature:8s}: {ips:8.2f} images/s ({seconds * 1e3:.1f} ms/batch); "
            f"GFLOP/image {flops['total'] / 1e9:.2f} ({parts}); {achieved / 1e12:.1f} TFLOP/s; {mfu}"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if not args.mfu_only:
        part1(args)
    if args.mfu or args.mfu_only or torch.cuda.is_available():
        part2(args)


if __name__ == "__main__":
    main()
