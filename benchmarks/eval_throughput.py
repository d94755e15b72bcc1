"""Evaluation throughput: batched greedy generation vs batch size 1 on the same questions.

Generates a small shapes world and a tiny SeaMLLM in a temp folder, then trains the tiny model briefly
(`--train-steps` AdamW steps of stage-2 instruction tuning on the world's instruct conversations) so that it
answers and stops: its answers end at the end-of-turn token, of varied lengths, as a real instruct model's
(an untrained random model never stops, every answer runs to the token limit, the best case for batching).
The script prints how many answers stopped before `--max-new-tokens`.

It then answers the world's benchmark questions (GQA, POPE, MME, MMBench) with batch size 1 (as LLaVA's
`model_vqa_loader`, which asserts it) and batched, `--repeats` times each, alternating which goes first;
it checks that every run gives the same answers and prints questions per second (medians) and the speed
ratio. Timings include prompt building and image preprocessing (the whole runner).

    .venv/bin/python benchmarks/eval_throughput.py                 # CPU default, 1-2 minutes
    .venv/bin/python benchmarks/eval_throughput.py --threads 1 --batch 32
    .venv/bin/python benchmarks/eval_throughput.py --device cuda --shape gemma2b --batch 32

`--shape gemma2b`: the Gemma-2B preset's model shape (random open_clip ViT-L-14-336 tower, mlp2x_gelu
adapter, a Gemma decoder of Gemma-2B's depth and widths: 2048 x 18 layers, 8 heads of 256, one KV head, MLP
16384) with the tiny Gemma-style tokenizer and its chat template; the vocabulary is the tokenizer's (a
few hundred ids, not 256,000: the LM head is the one part that is smaller than Gemma-2B's). On CUDA it
trains under bf16 autocast, then answers in bf16 weights. `gemma2b-mini`: the same code path with a
tiny CLIP tower and a 128-wide, 2-layer Gemma (a CPU smoke test).
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
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

# Gemma-2B's decoder (google/gemma-2b config.json) and a few-second CPU stand-in for smoke tests.
SHAPES: dict[str, dict[str, int]] = {
    "gemma2b": dict(hidden_size=2048, num_hidden_layers=18, num_attention_heads=8, intermediate_size=16384),
    "gemma2b-mini": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-eval", type=int, default=8, help="world eval images (20 questions per image)")
    p.add_argument("--n-instruct", type=int, default=64, help="world instruct images to train on")
    p.add_argument("--train-steps", type=int, default=150, help="instruction-tuning steps (0: random model)")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default: 2e-4 for gemma2b, else 3e-3")
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=16, help="batch size of the batched run")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2, help="runs of each, alternating which goes first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--llm-hidden", type=int, default=64)
    p.add_argument("--llm-layers", type=int, default=2)
    p.add_argument("--shape", default="tiny", choices=["tiny", *SHAPES], help="model shape (see above)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def train_to_stop(model: Any, world: Path, template: str, args: argparse.Namespace) -> tuple[float, float]:
    """A few AdamW steps of instruction tuning (adapter + LLM) on the world's instruct conversations, so
    that the model learns the answers' shape and their end-of-turn token; (first, last) loss."""
    from sea.data.llava import iter_json_records
    from sea.training.data import Collator, ConversationDataset, move_to
    from sea.training.modules import InstructModule

    samples = [
        {"id": str(r["id"]), "image": r.get("image"), "conversations": r["conversations"]}
        for r in (record.value for record in iter_json_records(world / "instruct.json"))
    ]
    data = ConversationDataset(
        samples, model.tokenizer, template, world, model.vision.preprocess, image_aspect_ratio="pad"
    )
    items = [data[i] for i in range(len(data))]  # preprocess once, reuse every epoch
    collate = Collator(model.tokenizer.pad_token_id)
    module = InstructModule(model)
    model.set_trainable(adapter=True, llm=True)
    model.train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / max(1, args.warmup_steps)))
    g = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    losses = []
    for _ in range(args.train_steps):
        pick = torch.randint(len(items), (args.train_batch,), generator=g).tolist()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = module(move_to(collate([items[i] for i in pick]), device))
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses[0], statistics.mean(losses[-10:])


def build_gemma_shape(shape: str, root: Path, device: str, seed: int) -> Any:
    """A random SeaMLLM of the Gemma-2B preset's shape (module docstring), built in memory."""
    from transformers import AutoModelForCausalLM

    from sea.models.adapter import build_adapter
    from sea.models.mllm import SeaMLLM
    from sea.models.tiny import tiny_llm_config, tiny_tokenizer, tiny_vision_cfg
    from sea.models.vision import VisionTower

    torch.manual_seed(seed)
    if shape == "gemma2b":
        vcfg = {"name": "ViT-L-14-336", "pretrained": None, "select_layer": -2, "select_feature": "patch"}
    else:
        vcfg = tiny_vision_cfg(root / "clip", image_size=64, patch_size=8, width=64, layers=2, heads=2)
    vision = VisionTower.from_config(vcfg, device=device)
    tok = tiny_tokenizer("gemma")
    config = tiny_llm_config(
        "gemma",
        vocab_size=64 * -(-len(tok) // 64),
        num_key_value_heads=1,
        max_position_embeddings=8192,
        **SHAPES[shape],
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(config)
        adapter = build_adapter("mlp2x_gelu", vision.hidden_size, config.hidden_size)
    return SeaMLLM(vision, adapter, llm, tok, max_length=2048)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.lr is None:
        args.lr = 2e-4 if args.shape == "gemma2b" else 3e-3
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from sea.config import compose, select
    from sea.eval.batch_generate import AnswerGenerator, benchmark_specs, load_questions
    from sea.models.tiny import build_tiny_mllm
    from sea.world.generate import generate_world

    template = "vicuna_v1" if args.shape == "tiny" else "chat"
    with tempfile.TemporaryDirectory(prefix="sea-eval-bench-") as tmp:
        root = Path(tmp)
        cfg = compose(
            [
                "experiment=tiny",
                f"paths.root={root}",
                f"data.world.n_eval={args.n_eval}",
                f"data.world.n_instruct={args.n_instruct}",
            ]
        )
        world = Path(cfg.paths.world)
        generate_world(select(cfg, "data.world"), int(cfg.seed), world)
        if args.shape == "tiny":
            model = build_tiny_mllm(
                root / "model",
                max_length=512,
                hidden_size=args.llm_hidden,
                intermediate_size=2 * args.llm_hidden,
                num_hidden_layers=args.llm_layers,
                seed=args.seed,
            ).to(args.device)
        else:
            model = build_gemma_shape(args.shape, root, args.device, args.seed)
        start = time.perf_counter()
        losses = train_to_stop(model, world, template, args) if args.train_steps else (float("nan"),) * 2
        train_s = time.perf_counter() - start
        model.eval()
        if args.device.startswith("cuda"):
            model.to(torch.bfloat16)
        gen = AnswerGenerator(model, template)
        work = [
            (spec, load_questions(spec))
            for spec in benchmark_specs(select(cfg, "eval"), select(cfg, "data.eval_sets"))
        ]
        n = sum(len(qs) for _, qs in work)
        gen.answer(work[0][1][:2], work[0][0].image_folder, 2, 2)  # warm-up

        def run(batch: int) -> tuple[float, list[str]]:
            start = time.perf_counter()
            texts = [
                t for spec, qs in work for t in gen.answer(qs, spec.image_folder, batch, args.max_new_tokens)
            ]
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - start, texts

        times: dict[int, list[float]] = {1: [], args.batch: []}
        answers: dict[int, list[list[str]]] = {1: [], args.batch: []}
        for r in range(args.repeats):
            for size in (1, args.batch) if r % 2 == 0 else (args.batch, 1):
                seconds, texts = run(size)
                times[size].append(seconds)
                answers[size].append(texts)
    reference = answers[1][0]
    same = min(
        sum(a == b for a, b in zip(reference, texts, strict=True))
        for runs in answers.values()
        for texts in runs
    )
    llm = model.llm.config
    describe = (
        f"{args.shape} (LLM {llm.hidden_size} x {llm.num_hidden_layers} layers, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters with the CLIP text tower)"
    )
    lengths = [len(model.tokenizer(t, add_special_tokens=False).input_ids) for t in reference]
    stopped = sum(k < args.max_new_tokens for k in lengths)
    t1, tb = statistics.median(times[1]), statistics.median(times[args.batch])
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, {n} questions, "
        f"max_new_tokens {args.max_new_tokens}; model: {describe}, "
        f"{args.train_steps} instruct steps ({train_s:.0f} s, loss {losses[0]:.2f} -> {losses[1]:.2f})"
    )
    print(
        f"answers stopped before the limit: {stopped}/{n}; answer length (tokens, re-encoded): "
        f"mean {statistics.mean(lengths):.1f}, max {max(lengths)}"
    )
    for size in (1, args.batch):
        t = statistics.median(times[size])
        runs = ", ".join(f"{x:.2f}" for x in times[size])
        print(
            f"batch {size:<3d} {t:7.2f} s  {n / t:8.1f} questions/s  (median of {len(times[size])}: {runs} s)"
        )
    print(
        f"speed ratio (batched / batch 1): {t1 / tb:.1f}x (medians; runs alternated, each size first in "
        f"half of them); "
        f"identical answers in every run: {same}/{n}"
    )
    return {"ratio": t1 / tb, "same": same, "questions": n, "stopped": stopped, "losses": losses}


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result["same"] == result["questions"] else 1)
