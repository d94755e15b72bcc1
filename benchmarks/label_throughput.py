"""Labeling throughput. Part 1: the batched path (`Labeler.label_batch`) at batch B against the same path at
batch 1 and against a naive per-image, per-patch loop, on the same inputs. Part 2 (with CUDA, or `--mfu`):
images/s and MFU of labeling with open_clip ViT-L-14-336 at batch 256, for the stage's current path and
for faster variants, with their labels compared with the current path's.

Part 1 (always): a random tiny CLIP of the embedded default's size (64 px, patch 8, width 192, 4 layers,
embed 128), random images, a random normalised word matrix (the text side is computed once and cached,
so it is not part of throughput). The three paths compute the same labels (checked) and are timed with
the same number of repeats, the order rotated from repeat to repeat; medians are printed. Data loading
is excluded.

Part 2: `--mfu-model` (ViT-L-14-336) with random weights, batch 256, q = 50,000 words. Variants
(`--variants`, each compared with the first, `autocast`, which is how the stage runs today):

    autocast          fp32 weights under bf16 autocast (the stage's path)
    bf16              bf16 weights (and images) under autocast
    bf16+compile      bf16 weights, `torch.compile` of the tower's patch-feature function
    autocast+compile  fp32 weights under autocast, compiled

Tolerance of the bf16 variants against the stage's path: the same top-1 word on >= 95 % of patches and
top-1 scores within 0.01 where it is the same (tests/benchmarks checks it on a random tiny CLIP on the CPU,
fp32 reference: 97.9-99.0 % and <= 0.005 over three seeds and both features; lower slots swap more often,
about 10 % of them, among near-equal random scores). On the device, part 2 prints the same agreement
figures for ViT-L-14-336 (random weights: near-ties are frequent, so they bound real-weight changes).

`--profile` runs torch.profiler over two batches of each variant and prints the top operators by device
time (and writes Chrome traces to `--profile-dir`). `--loader-images K` times the input side alone:
K JPEGs (640x480) decoded and preprocessed by `iter_batches` with `--workers` DataLoader workers and
pinned memory, the stage's loader.

FLOPs are counted analytically per image, with T = N + 1 tokens, width D, MLP width M, L blocks, joint
dim E, q words, patch p:

    patch embed  2 N (3 p^2) D
    block        8 T D^2 (qkv + out) + 4 T^2 D (scores + weighted sum) + 4 T D M (MLP)
    proj         L blocks, then 2 N D E (ln_post + proj)
    maskclip     L - 1 blocks, the value path 4 T D^2, then 2 N D E
    scoring      2 N E q

MFU = FLOPs per image x images/s / peak bf16 dense FLOP/s (H100 SXM / H200: 989.4 TFLOP/s; `--peak-tflops`).

    .venv/bin/python benchmarks/label_throughput.py                  # part 1 on CPU, about 1 min
    .venv/bin/python benchmarks/label_throughput.py --mfu-only       # part 2 only (GPU), ~2 min
    .venv/bin/python benchmarks/label_throughput.py --mfu-only --profile --variants autocast,bf16+compile
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

from sea.labeling.labeler import Labeler, LabelSettings  # noqa: E402
from sea.labeling.patches import patch_features  # noqa: E402
from sea.labeling.scoring import EMPTY_ID, SIGNS, BackgroundFilter  # noqa: E402

PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0}


VARIANTS = ("autocast", "bf16", "bf16+compile", "autocast+compile")


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
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of every part-1 path")
    p.add_argument("--no-naive", action="store_true", help="skip the naive loop in part 1")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mfu", action="store_true", help="run part 2 even without CUDA (slow on CPU)")
    p.add_argument("--mfu-only", action="store_true", help="skip part 1")
    p.add_argument("--mfu-model", default="ViT-L-14-336", help="open_clip model name of part 2")
    p.add_argument("--mfu-batch", type=int, default=256)
    p.add_argument("--mfu-words", type=int, default=50000, help="q for part 2 (LLaVA word list size)")
    p.add_argument("--mfu-repeats", type=int, default=5)
    p.add_argument("--features", default="proj,maskclip", help="part-2 patch features, comma-separated")
    p.add_argument(
        "--variants",
        default="autocast,bf16,bf16+compile",
        help=f"part-2 variants, comma-separated, the first is the reference: {', '.join(VARIANTS)}",
    )
    p.add_argument("--pure-bf16", action="store_true", help="same as --variants bf16 (older name)")
    p.add_argument("--chunk-elems", type=int, default=1 << 26, help="patches x words per scoring chunk")
    p.add_argument("--profile", action="store_true", help="torch.profiler over two batches per variant")
    p.add_argument("--profile-dir", default=None, help="write Chrome traces there")
    p.add_argument("--loader-images", type=int, default=0, help="time the JPEG loader on this many images")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the loader timing")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 dense TFLOP/s of the device")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.pure_bf16:
        args.variants = "bf16"
    for v in args.variants.split(","):
        if v not in VARIANTS:
            p.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    return args


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


def timed_rotated(
    fns: dict[str, Callable[[], Any]], repeats: int, device: torch.device
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds and last output per function: one warm-up each, then `repeats` rounds, each running
    every function once in an order rotated from round to round."""
    outs = {name: fn() for name, fn in fns.items()}
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            start = time.perf_counter()
            outs[name] = fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outs


def agreement(ref: tuple[torch.Tensor, torch.Tensor], other: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """How far labels (ids, scores) are from reference labels: identical ids over all slots, top-1 ids,
    and the largest top-1 score difference where the top-1 ids agree."""
    ids_r, sc_r = (t.cpu() for t in ref)
    ids_o, sc_o = (t.cpu() for t in other)
    same_top1 = ids_r[..., 0] == ids_o[..., 0]
    diff = (sc_r[..., 0].float() - sc_o[..., 0].float()).abs()[same_top1]
    return {
        "ids_identical": float((ids_r == ids_o).float().mean()),
        "top1_identical": float(same_top1.float().mean()),
        "top1_score_max_diff": float(diff.max()) if diff.numel() else 0.0,
    }


def part1(args: argparse.Namespace) -> dict[str, Any]:
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

    def batched(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [labeler.label_batch(images[i : i + size]) for i in range(0, len(images), size)]
        return torch.cat([o[0] for o in outs]).cpu(), torch.cat([o[1] for o in outs]).cpu()

    paths: dict[str, Callable[[], Any]] = {
        f"batched, batch {args.batch}": lambda: batched(args.batch),
        "batched, batch 1": lambda: batched(1),
    }
    if not args.no_naive:
        paths["naive per-image, per-patch loop"] = lambda: naive_labels(tower, images, text, settings)
    seconds, outs = timed_rotated(paths, args.repeats, device)
    names = list(paths)
    n = tower.num_patches
    print(
        f"part 1: {args.images} images {args.image_size}px, patch {args.patch} ({n} patches), "
        f"width {args.width}, {args.layers} layers, embed {tower.embed_dim}, q={args.words} words, "
        f"top-{args.top_n}, feature={args.feature}, sign={args.sign}, "
        f"background={settings.background.name()}, device={device}, threads={torch.get_num_threads()}; "
        f"median of {args.repeats} repeats per path, order rotated"
    )
    result: dict[str, Any] = {"images_per_s": {}, "speedup": {}, "agreement": {}}
    for name in names:
        result["images_per_s"][name] = args.images / seconds[name]
        print(f"  {name:34s} {args.images / seconds[name]:10.1f} images/s  ({seconds[name]:.3f} s)")
    for name in names[1:]:
        result["speedup"][name] = seconds[name] / seconds[names[0]]
        result["agreement"][name] = agreement(outs[names[0]], outs[name])
        a = result["agreement"][name]
        print(
            f"  {names[0]} / {name}: {result['speedup'][name]:.2f}x; same ids {a['ids_identical']:.4%}, "
            f"top-1 score max diff {a['top1_score_max_diff']:.2e}"
        )
    return result


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


def prepare_tower(tower: Any, variant: str) -> Any:
    """A copy of `tower` set up for `variant` (see the module docstring); the reference is `autocast`."""
    import copy

    t = copy.deepcopy(tower)
    if variant.startswith("bf16"):
        t.to(torch.bfloat16)
    if variant.endswith("+compile"):
        t.joint_patch_tokens = torch.compile(t.joint_patch_tokens, dynamic=False)
    return t


def profile_table(fn: Callable[[], Any], device: torch.device, trace: Path | None, rows: int = 20) -> str:
    """Top operators by device time (CPU time without CUDA) of two calls of `fn`; lines start `prof| `."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(2):
            fn()
        sync(device)
    if trace is not None:
        trace.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(trace))
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=rows)
    return "\n".join("prof| " + line for line in table.splitlines())


def load_clip_tower(name: str, device: torch.device) -> tuple[Any, dict]:
    import open_clip

    from sea.models.vision import OpenClipTower

    clip = open_clip.create_model(name, pretrained=None, precision="fp32", device=device)
    cfg = open_clip.get_model_config(name)
    tower = OpenClipTower(
        clip, name=name, model_cfg=cfg, preprocess=lambda x: x, tokenizer=open_clip.get_tokenizer(name)
    )
    return tower, cfg


def measured_peak_tflops(device: torch.device) -> float:
    """bf16 dense matmul FLOP/s of this device (8192^3, 20 runs), the MFU denominator."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * 8192**3 * 20 / (time.perf_counter() - start) / 1e12


def part2(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    name = args.mfu_model
    tower, cfg = load_clip_tower(name, device)
    v = cfg["vision_cfg"]
    d, layers, patch = int(v["width"]), int(v["layers"]), int(v["patch_size"])
    m = int(d * float(v.get("mlp_ratio", 4.0)))
    n, e, q, b = tower.num_patches, tower.embed_dim, args.mfu_words, args.mfu_batch
    text = random_text(q, e, device, args.seed)
    words = [f"w{i}" for i in range(q)]
    g = torch.Generator().manual_seed(args.seed)
    images = torch.randn(b, 3, tower.image_size[0], tower.image_size[1], generator=g).to(device)
    peak = peak_tflops(args)
    measured = measured_peak_tflops(device) if device.type == "cuda" else None
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    variants = args.variants.split(",")
    print(f"part 2: {name} (random weights) on {dev_name}; variants {variants} (reference: {variants[0]})")
    print(
        f"  inputs: batch B={b}, patches N={n} (T=N+1={n + 1} tokens), width D={d}, MLP M={m}, "
        f"blocks L={layers}, joint dim E={e}, words q={q}, patch p={patch}, top-n={args.top_n}, "
        f"scoring chunk {args.chunk_elems} elements; peak bf16 = {peak} TFLOP/s (datasheet), "
        f"{f'{measured:.0f}' if measured else 'n/a'} TFLOP/s (measured 8192^3 matmul); "
        f"median of {args.mfu_repeats} batches after one warm-up (compile included in the warm-up)"
    )
    result: dict[str, Any] = {}
    for feature in args.features.split(","):
        settings = LabelSettings(
            top_n=args.top_n,
            feature=feature,
            sign="cosine",
            batch_size=b,
            chunk_elems=args.chunk_elems,
            background=BackgroundFilter("mean_sim", threshold=0.9),
        )
        flops = vit_flops(n, d, m, layers, e, q, patch, feature)
        parts = ", ".join(f"{k} {val / 1e9:.2f}" for k, val in flops.items() if k != "total")
        print(f"  {feature}: GFLOP/image {flops['total'] / 1e9:.2f} ({parts})")
        reference = None
        for variant in variants:
            t = prepare_tower(tower, variant)
            labeler = Labeler(t, text, words, settings, mixed_precision="bf16")
            batch = images.to(t.dtype)
            start = time.perf_counter()
            seconds, outs = timed_rotated(
                {variant: lambda lab=labeler, x=batch: lab.label_batch(x)}, args.mfu_repeats, device
            )
            wall = time.perf_counter() - start
            out = outs[variant]
            if reference is None:
                reference = out
            agree = agreement(reference, out)
            ips = b / seconds[variant]
            achieved = flops["total"] * ips
            mfu = f"MFU {achieved / (peak * 1e12):.1%}" if peak else "MFU n/a (give --peak-tflops)"
            if measured:
                mfu += f" ({achieved / (measured * 1e12):.1%} of the measured peak)"
            print(
                f"    {variant:18s} {ips:8.2f} images/s ({seconds[variant] * 1e3:.1f} ms/batch); "
                f"{achieved / 1e12:.1f} TFLOP/s; {mfu}; vs {variants[0]}: "
                f"same ids {agree['ids_identical']:.2%}, top-1 {agree['top1_identical']:.2%}, "
                f"top-1 score max diff {agree['top1_score_max_diff']:.2e}; {wall:.0f} s wall with warm-up"
            )
            result[f"{feature}/{variant}"] = {"images_per_s": ips, "tflops": achieved / 1e12, **agree}
            if args.profile:
                trace = Path(args.profile_dir) / f"{feature}-{variant}.json" if args.profile_dir else None
                print(profile_table(lambda lab=labeler, x=batch: lab.label_batch(x), device, trace))
            del labeler, t
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return result


def loader_throughput(args: argparse.Namespace) -> float:
    """Images/s of the stage's loader alone (JPEG decode + CLIP-L preprocessing), pinned batches."""
    import open_clip
    from PIL import Image

    from sea.labeling.patches import iter_batches

    size = open_clip.get_model_config(args.mfu_model)["vision_cfg"]["image_size"]
    preprocess = open_clip.image_transform(size, is_train=False)
    g = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = (torch.rand(480, 640, 3, generator=g) * 255).to(torch.uint8).numpy()
        rows = []
        for i in range(min(args.loader_images, 64)):  # 64 distinct files, reused
            Image.fromarray(base.copy()).rotate(i).save(f"{tmp}/{i}.jpg", quality=90)
        rows = [{"id": str(i), "image": f"{i % 64}.jpg"} for i in range(args.loader_images)]
        pin = torch.cuda.is_available()
        start = time.perf_counter()
        seen = 0
        for idx, batch in iter_batches(rows, tmp, preprocess, args.mfu_batch, args.workers, pin):
            batch.to(args.device, non_blocking=True)
            seen += len(idx)
        sync(torch.device(args.device))
        ips = seen / (time.perf_counter() - start)
    print(
        f"loader: {seen} JPEGs 640x480 -> {args.mfu_model} preprocessing, batch {args.mfu_batch}, "
        f"{args.workers} workers, pin_memory={pin}: {ips:.1f} images/s (first batch's start-up included)"
    )
    return ips


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    result: dict[str, Any] = {}
    if not args.mfu_only:
        result["part1"] = part1(args)
    if args.mfu or args.mfu_only or torch.cuda.is_available():
        result["part2"] = part2(args)
    if args.loader_images:
        result["loader_images_per_s"] = loader_throughput(args)
    return result


if __name__ == "__main__":
    main()
