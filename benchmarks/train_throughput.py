"""Training throughput at a real preset's shapes: our stage-1 / stage-2 step against the same model built as
HF `LlavaForConditionalGeneration` and trained by a plain HF-style loop, side by side in one process.

Ours: the preset's `SeaMLLM` at random weights (`preset_memory.build`: open_clip tower, the LLM from its
published config, the adapter), trained as the stages train it: `AlignModule` / `InstructModule` under an
`Accelerator` (bf16 mixed precision on CUDA), `accelerator.backward`, gradient clipping, our AdamW.
HF: `LlavaForConditionalGeneration` with an HF CLIP tower of the same geometry, the same LLM config and
projector, `use_cache=False`, trained by `loss = model(**batch).loss; loss.backward(); clip; step` under
`torch.autocast(bf16)` with torch's AdamW. Both: frozen weights in bf16 and trainable ones in fp32 (our
`cast_frozen`; on CPU everything fp32, no autocast), the same attention implementation (`--attn`),
gradient checkpointing on the LLM as the preset has it, the same per-device batch and sequence length
(stage 1: BOS + visual tokens + `--text-len` caption tokens; stage 2: `model.llm.max_length`, the worst
case of mix665K), the preset's lr / clipping. Trainable: stage 1 the projector, stage 2 projector + LLM.

Vision depth: ours runs LLaVA's select layer (-2): L - 1 blocks. `--hf-vision matched` (default) gives
HF's tower L - 1 blocks and takes its last output (the same work); `shipped` is LLaVA-1.5's HF config
(L blocks, penultimate output: one block more).

Both models stay on the device; every round runs one step of each, the order alternating; medians.
Per model: ms/step, tokens/s (all positions, visual tokens included), peak memory of its step (its own
weights, gradients and optimizer state plus the step's activations: the device's peak during the step
minus what was allocated before it, plus the model's resident bytes), and MFU = model FLOPs per step /
step time / peak bf16 FLOP/s (measured by an 8192^3 bf16 matmul unless `--peak-tflops`). Model FLOPs
are analytic (`step_flops`): the vision tower forward, the LLM forward, its backward to the activations
(stages 1 and 2) and to the weights (stage 2), causal attention counted half; gradient checkpointing's
recomputation is not counted (it is work, not model FLOPs). tests/benchmarks checks the count against
torch's FlopCounterMode.

    python benchmarks/train_throughput.py --preset sea_llava15_gemma2b                 # GPU, both stages
    python benchmarks/train_throughput.py --preset sea_llava15_gemma2b --stages instruct --models sea
    python benchmarks/train_throughput.py --preset sea_llava15_gemma2b --tiny --device cpu   # smoke test
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from label_throughput import measured_peak_tflops, vit_flops  # noqa: E402
from model_step import hf_llava, set_trainable_hf  # noqa: E402
from preset_memory import build, make_batch  # noqa: E402

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX  # noqa: E402

# --tiny: a small CLIP and LLM, short sequences (seconds on a CPU); the preset still gives the LLM family.
TINY_VISION = dict(image_size=32, patch_size=8, width=64, layers=3, heads=2, embed_dim=32)
TINY_LLM = dict(vocab_size=512, max_position_embeddings=512)
TINY_SHAPES = {"align": dict(batch=2, text_len=16), "instruct": dict(batch=2, max_length=64)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="sea_llava15_gemma2b", help="a conf/experiment name")
    p.add_argument("--stages", default="align,instruct", help="comma-separated: align, instruct")
    p.add_argument("--models", default="sea,hf", help="comma-separated: sea (ours), hf (HF Llava)")
    p.add_argument("--batch", type=int, default=None, help="per-device batch (default: the preset's)")
    p.add_argument("--text-len", type=int, default=64, help="stage-1 caption tokens per sample")
    p.add_argument("--max-length", type=int, default=None, help="stage-2 sequence (default: the preset's)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model")
    p.add_argument("--hf-vision", default="matched", choices=["matched", "shipped"])
    p.add_argument(
        "--attn", default="sdpa", help="attn_implementation of both LLMs (sdpa, flash_attention_2)"
    )
    p.add_argument("--tiny", action="store_true", help="tiny shapes for a CPU smoke test")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 FLOP/s (default: measured)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- FLOPs


def llm_forward_flops(config: Any, batch: int, seq: int, causal: bool = True) -> dict[str, float]:
    """Forward FLOPs of a Llama/Gemma-style decoder on (batch, seq) tokens: the layers' matmuls (q, k, v,
    o, gated MLP), attention (QK^T and AV; half when `causal`) and the LM head."""
    d = config.hidden_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    hd = getattr(config, "head_dim", None) or d // heads
    ff = config.intermediate_size
    tokens = batch * seq
    per_layer = 2 * tokens * (d * heads * hd + 2 * d * kv * hd + heads * hd * d + 3 * d * ff)
    attention = 4 * batch * seq * seq * heads * hd * (0.5 if causal else 1.0)
    layers = config.num_hidden_layers
    return {
        "matmuls": layers * per_layer,
        "attention": layers * attention,
        "lm_head": 2 * tokens * d * config.vocab_size,
    }


def llm_step_flops(stage: str, config: Any, batch: int, seq: int, causal: bool = True) -> float:
    """LLM FLOPs of one training step: the forward; the backward to the activations (every dense matmul
    once more, attention's two products twice: both operands are activations); in stage 2 also to the
    weights (every dense matmul once more). Stage 1 needs the activation gradients too: they carry the
    loss back to the visual tokens."""
    f = llm_forward_flops(config, batch, seq, causal)
    dense = f["matmuls"] + f["lm_head"]
    backward = dense + 2 * f["attention"] + (dense if stage == "instruct" else 0.0)
    return sum(f.values()) + backward


def step_flops(
    stage: str, llm_config: Any, vision: dict[str, int], adapter_params: int, batch: int, seq: int
) -> float:
    """Model FLOPs of one training step (module docstring). `vision`: n, d, m, layers (run), patch."""
    n, d, m, layers, patch = (vision[k] for k in ("n", "d", "m", "layers", "patch"))
    tower = batch * vit_flops(n, d, m, layers, 0, 0, patch, "proj")["total"]  # forward only, no grad
    adapter = 3 * 2 * batch * n * adapter_params  # trainable in both stages
    return llm_step_flops(stage, llm_config, batch, seq) + tower + adapter


# --------------------------------------------------------------------------------------------- models


def tower_geometry(tower: Any) -> dict[str, int]:
    block = tower.visual.transformer.resblocks[0]
    return {
        "d": tower.hidden_size,
        "m": int(block.mlp.c_fc.out_features),
        "heads": int(block.attn.num_heads),
        "layers_total": tower.num_layers,
        "layers": tower.num_layers - 1,  # LLaVA's select layer -2
        "patch": int(tower.patch_size[0]),
        "image": int(tower.image_size[0]),
        "n": tower.num_patches,
    }


def hf_batch(ours: dict, n: int, image_token: int) -> dict:
    """Our batch (one -200 placeholder per row) as HF Llava's processor gives it: N image tokens."""
    ids = ours["input_ids"]
    rows = []
    for row in ids:
        at = int((row == IMAGE_TOKEN_INDEX).nonzero()[0])
        rows.append(torch.cat([row[:at], row.new_full((n,), image_token), row[at + 1 :]]))
    hf_ids = torch.stack(rows)
    labels = hf_ids.masked_fill(hf_ids == image_token, IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    return {
        "input_ids": hf_ids,
        "labels": labels,
        "attention_mask": torch.ones_like(hf_ids),
        "pixel_values": ours["images"],
        "use_cache": False,
    }


class Arm:
    """One model with its optimizer and its training step."""

    def __init__(self, name: str, step: Any, params: list, resident: Any) -> None:
        self.name, self.step, self.params, self.resident = name, step, params, resident
        self.times: list[float] = []
        self.peak = 0


def resident_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    tensors = [p for p in model.parameters()] + [
        v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)
    ]
    return sum(t.numel() * t.element_size() for t in tensors if t.device.type != "cpu")


def run_stage(args: argparse.Namespace, cfg: Any, stage: str, device: torch.device) -> dict[str, Any]:
    from sea.training.loop import cast_frozen, make_accelerator
    from sea.training.optim import build_optimizer

    cuda = device.type == "cuda"
    train = cfg[stage].train
    shapes = TINY_SHAPES[stage] if args.tiny else {}
    batch_size = args.batch or shapes.get("batch") or int(train.per_device_batch_size)
    frozen_dtype = torch.bfloat16 if cuda else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        vision = None
        if args.tiny:
            from sea.models.tiny import tiny_vision_cfg

            vision = tiny_vision_cfg(tmp, name="bench-train-clip", **TINY_VISION)
        module, mllm = build(
            cfg,
            stage,
            False,
            args.tiny,
            device,
            vision=vision,
            frozen_dtype=frozen_dtype,
            attn_implementation=args.attn,
            llm_overrides=TINY_LLM if args.tiny else None,
        )
    llm_config = mllm.llm.config
    geo = tower_geometry(mllm.vision)
    n = geo["n"]
    max_len = args.max_length or shapes.get("max_length") or int(cfg.model.llm.max_length)
    text_len = (shapes.get("text_len") or args.text_len) if stage == "align" else max_len - n - 1
    seq = 1 + n + text_len
    ours = make_batch(mllm, batch_size, text_len, llm_config.vocab_size - 1, device)
    clip = float(train.grad_clip or 0) or float("inf")
    lr = float(train.lr)
    arms: list[Arm] = []
    models = args.models.split(",")

    if "sea" in models:
        accelerator = make_accelerator("bf16" if cuda else "no", "cuda" if cuda else "cpu", lambda _: 1)
        trainable = [p for p in module.parameters() if p.requires_grad]
        opt = build_optimizer([{"params": trainable, "lr": lr, "weight_decay": 0.0}], (0.9, 0.999), 1e-8)
        module, opt = accelerator.prepare(module, opt)
        module.train()

        def sea_step(module=module, opt=opt, accelerator=accelerator, trainable=trainable) -> None:
            loss, _ = module(ours)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(trainable, clip)
            opt.step()
            opt.zero_grad(set_to_none=True)

        arms.append(Arm("ours (SeaMLLM)", sea_step, trainable, lambda m=module, o=opt: resident_bytes(m, o)))
    else:
        del module, mllm

    if "hf" in models:
        with torch.device(device):
            hf = hf_llava(
                llm_config,
                geo["d"],
                geo["m"],
                geo["layers_total"],
                geo["heads"],
                geo["image"],
                geo["patch"],
                args.hf_vision == "matched",
                args.attn,
            )
        set_trainable_hf(hf, stage == "instruct")
        cast_frozen(hf, frozen_dtype)
        hf.to(device)
        hf.config.use_cache = False
        if train.gradient_checkpointing:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        hf.train()
        hf_params = [p for p in hf.parameters() if p.requires_grad]
        hf_opt = torch.optim.AdamW(hf_params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        batch = hf_batch(ours, n, llm_config.vocab_size - 1)
        batch["pixel_values"] = batch["pixel_values"].to(frozen_dtype)

        def hf_step(hf=hf, opt=hf_opt, params=hf_params, batch=batch) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = hf(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            opt.zero_grad(set_to_none=True)

        blocks = geo["layers"] if args.hf_vision == "matched" else geo["layers_total"]
        name = f"HF Llava ({blocks} vision blocks)"
        arms.append(Arm(name, hf_step, hf_params, lambda m=hf, o=hf_opt: resident_bytes(m, o)))

    def timed(arm: Arm) -> float:
        if cuda:
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        arm.step()
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        if cuda:
            transient = torch.cuda.max_memory_allocated(device) - before
            arm.peak = max(arm.peak, transient + arm.resident())
        return seconds

    for r in range(args.warmup + args.steps):
        for arm in arms if r % 2 == 0 else arms[::-1]:
            seconds = timed(arm)
            if r >= args.warmup:
                arm.times.append(seconds)

    adapter_params = sum(p.numel() for p in mllm.adapter.parameters()) if "sea" in models else 0
    if not adapter_params:  # HF only: the same mlp2x_gelu projector
        adapter_params = sum(p.numel() for p in hf.model.multi_modal_projector.parameters())
    flops = step_flops(stage, llm_config, geo, adapter_params, batch_size, seq)
    peak = args.peak_tflops or (measured_peak_tflops(device) if cuda else None)
    result: dict[str, Any] = {
        "stage": stage,
        "per_device_batch": batch_size,
        "seq_len": seq,
        "tflop_per_step": flops / 1e12,
        "peak_tflops": peak,
        "models": {},
    }
    print(
        f"{stage}: batch {batch_size} x seq {seq} (BOS + {n} visual + {text_len} text), "
        f"gradient checkpointing {'on' if train.gradient_checkpointing else 'off'}, attn {args.attn}, "
        f"{'bf16 autocast, frozen bf16 / trainable fp32' if cuda else 'fp32'}; model FLOPs/step "
        f"{flops / 1e12:.3f} TFLOP; peak {f'{peak:.0f} TFLOP/s' if peak else 'n/a (CPU)'}; "
        f"median of {args.steps} steps after {args.warmup}, order alternating"
    )
    for arm in arms:
        ms = statistics.median(arm.times) * 1e3
        row = {
            "ms_per_step": ms,
            "tokens_per_s": batch_size * seq / (ms / 1e3),
            "trainable_params": sum(p.numel() for p in arm.params),
            "peak_gib": arm.peak / 2**30 if cuda else None,
            "mfu": flops / (ms / 1e3) / (peak * 1e12) if peak else None,
        }
        result["models"][arm.name] = row
        print(
            f"  {arm.name:28s} {ms:9.1f} ms/step  {row['tokens_per_s']:10.0f} tokens/s  "
            f"trainable {row['trainable_params']:,}  "
            + (f"peak {row['peak_gib']:.1f} GiB  " if cuda else "")
            + (f"MFU {row['mfu']:.1%}" if peak else "")
        )
    if len(arms) == 2:
        result["ratio"] = statistics.median(arms[0].times) / statistics.median(arms[1].times)
        print(f"  ratio ours / HF step time = {result['ratio']:.3f} (goal <= 1.0)")
    return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from sea.config import compose

    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = compose([f"experiment={args.preset}"])
    results = []
    for stage in args.stages.split(","):
        results.append(run_stage(args, cfg, stage, device))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
