"""Peak GPU memory and step time of one training step of a real-recipe preset (conf/experiment/), per stage,
at the preset's per-device batch size, with random weights of the real architectures (no download).

The model is the project's `SeaMLLM`: open_clip ViT-L-14-336 (model.vision without its pretrained weights),
the LLM built from its published config (Gemma-2B, Vicuna-7B: `ARCHITECTURES` below), the mlp2x_gelu adapter.
It trains as the `align` / `instruct` stages do: `AlignModule` / `InstructModule`, frozen weights in bf16 and
trainable ones in fp32 under bf16 autocast (accelerate), gradient checkpointing, AdamW. Every sample is
padded to the longest case: stage 1 = BOS + 576 visual tokens + `--text-len` caption tokens (LCS-558K
captions are short; default 64), stage 2 = the full `model.llm.max_length` (2048), the worst case of mix665K.
Not included: SEA's contrastive loss (stage 1; at most 144 pairs per image, an N x N matrix: megabytes) and
FSDP / ZeRO sharding (one process). `--ddp` wraps the module in a one-process DDP, which adds its gradient
buckets (one more fp32 copy of the trainable weights) as on each of 8 DDP ranks.
`--frozen-llm` keeps the LLM frozen in stage 2 (activations without the LLM's optimizer state, for models
whose full fine-tuning only fits sharded: add the sharded state by hand).

    python benchmarks/preset_memory.py --preset sea_llava15_gemma2b --stage align
    python benchmarks/preset_memory.py --preset sea_llava15_gemma2b --stage instruct --ddp
    python benchmarks/preset_memory.py --preset sea_llava15_vicuna7b --stage instruct --frozen-llm
    python benchmarks/preset_memory.py --preset sea_llava15_gemma2b --stage align --tiny --device cpu  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX  # noqa: E402

# Published configs (config.json on the hub) of the presets' LLMs: (transformers class, kwargs).
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    "google/gemma-2b-it": (
        "GemmaConfig",
        dict(
            vocab_size=256000,
            hidden_size=2048,
            intermediate_size=16384,
            num_hidden_layers=18,
            num_attention_heads=8,
            num_key_value_heads=1,
            head_dim=256,
            max_position_embeddings=8192,
            hidden_activation="gelu_pytorch_tanh",
        ),
    ),
    "lmsys/vicuna-7b-v1.5": (
        "LlamaConfig",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
        ),
    ),
}
TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True, help="a conf/experiment name, e.g. sea_llava15_gemma2b")
    p.add_argument("--stage", choices=["align", "instruct"], required=True)
    p.add_argument("--batch", type=int, default=None, help="per-device batch (default: the preset's)")
    p.add_argument("--text-len", type=int, default=64, help="stage-1 caption tokens per sample")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps (the first is not timed)")
    p.add_argument("--frozen-llm", action="store_true", help="stage 2 with the LLM frozen (activations only)")
    p.add_argument(
        "--ddp", action="store_true", help="wrap in DDP (one process): counts its fp32 gradient buckets"
    )
    p.add_argument(
        "--tiny", action="store_true", help="shrink the LLM and the vision tower (smoke test on CPU)"
    )
    p.add_argument("--device", default="cuda")
    return p.parse_args(argv)


def build(
    cfg,
    stage: str,
    frozen_llm: bool,
    tiny: bool,
    device: torch.device,
    vision: dict | None = None,
    frozen_dtype: torch.dtype = torch.bfloat16,
    attn_implementation: str | None = None,
    llm_overrides: dict | None = None,
):
    """(module, mllm) of the preset at random weights; `vision` replaces the `model.vision` mapping,
    frozen weights go to `frozen_dtype` (trainable ones stay fp32)."""
    import transformers
    from omegaconf import OmegaConf

    from sea.models.adapter import build_adapter
    from sea.models.mllm import SeaMLLM
    from sea.models.vision import VisionTower
    from sea.training.loop import cast_frozen
    from sea.training.modules import AlignModule, InstructModule

    vcfg = vision or OmegaConf.to_container(cfg.model.vision, resolve=True)
    if vision is None:
        vcfg["pretrained"] = None
    if tiny and vision is None:
        vcfg.update(name="ViT-B-32", image_size=224, patch_size=32)
    vision = VisionTower.from_config(vcfg)
    ref = str(cfg.model.llm.name_or_path)
    if ref not in ARCHITECTURES:
        raise SystemExit(f"no architecture for {ref}: add its config to ARCHITECTURES")
    cls_name, kwargs = ARCHITECTURES[ref]
    kwargs = dict(kwargs, **(TINY | ({"head_dim": 32} if "head_dim" in kwargs else {}) if tiny else {}))
    kwargs.update(llm_overrides or {})
    config = getattr(transformers, cls_name)(**kwargs)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    with torch.device(device):
        llm = transformers.AutoModelForCausalLM.from_config(config, **extra)
    adapter = build_adapter(str(cfg.model.adapter.type), vision.hidden_size, config.hidden_size)
    mllm = SeaMLLM(vision, adapter, llm, None, max_length=int(cfg.model.llm.max_length))
    mllm.set_trainable(adapter=True, llm=stage == "instruct" and not frozen_llm)
    module = AlignModule(mllm, None) if stage == "align" else InstructModule(mllm)
    cast_frozen(module, frozen_dtype)  # trainable weights stay fp32 (the master weights)
    module.to(device)
    if cfg[stage].train.gradient_checkpointing:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return module, mllm


def make_batch(mllm, batch: int, text_len: int, vocab: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    text = torch.randint(3, vocab, (batch, text_len), generator=g)
    ids = torch.cat([torch.full((batch, 1), 2), torch.full((batch, 1), IMAGE_TOKEN_INDEX), text], dim=1)
    labels = ids.masked_fill(ids == IMAGE_TOKEN_INDEX, IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    size = mllm.vision.image_size
    pixels = torch.randn(batch, 3, size[0], size[1], generator=g)
    return {
        "input_ids": ids.to(device),
        "labels": labels.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "images": pixels.to(device),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from accelerate import Accelerator

    from sea.config import compose

    cfg = compose([f"experiment={args.preset}"])
    device = torch.device(args.device)
    module, mllm = build(cfg, args.stage, args.frozen_llm, args.tiny, device)
    train = cfg[args.stage].train
    batch_size = args.batch or int(train.per_device_batch_size)
    n_vis = mllm.vision.num_tokens
    max_len = int(cfg.model.llm.max_length)
    text_len = args.text_len if args.stage == "align" else max_len - n_vis - 1
    batch = make_batch(mllm, batch_size, text_len, mllm.llm.config.vocab_size, device)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=float(train.lr), weight_decay=0.0)
    cpu = device.type == "cpu"
    accelerator = Accelerator(mixed_precision="no" if cpu else "bf16", cpu=cpu)
    module, optimizer = accelerator.prepare(module, optimizer)
    if args.ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("gloo" if cpu else "nccl", rank=0, world_size=1)
        module = DistributedDataParallel(module, device_ids=None if cpu else [device.index or 0])
    module.train()
    if not cpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    result: dict = {
        "preset": args.preset,
        "stage": args.stage,
        "per_device_batch": batch_size,
        "seq_len": 1 + n_vis + text_len,
        "frozen_llm": args.frozen_llm,
        "ddp": args.ddp,
        "params_total": sum(p.numel() for p in module.parameters()),
        "params_trainable": sum(p.numel() for p in trainable),
        "device": torch.cuda.get_device_name(device) if not cpu else "cpu",
    }
    try:
        for _ in range(args.steps):
            start = time.perf_counter()
            loss, _metrics = module(batch)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if not cpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        result["status"] = "ok"
    except torch.OutOfMemoryError as err:
        result["status"] = f"OOM: {str(err).splitlines()[0]}"
    if not cpu:
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
        result["device_total_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 2)
    if len(times) > 1:
        result["step_s"] = round(sum(times[1:]) / len(times[1:]), 3)
        result["samples_per_s"] = round(batch_size / result["step_s"], 2)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
