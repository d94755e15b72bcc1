"""Evaluation throughput: batched greedy generation vs batch size 1 on the same questions.

Generates a small shapes world and a tiny random SeaMLLM in a temp folder, answers the world's benchmark
questions (GQA, POPE, MME, MMBench) once with batch size 1 (as LLaVA's `model_vqa_loader`, which asserts
it) and once batched, checks that both give the same answers, and prints questions per second and the
speed ratio. Timings include prompt building and image preprocessing (the whole runner).

    .venv/bin/python benchmarks/eval_throughput.py                 # CPU default, 1-2 minutes
    .venv/bin/python benchmarks/eval_throughput.py --threads 1 --batch 32
    .venv/bin/python benchmarks/eval_throughput.py --device cuda --n-eval 64 --batch 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-eval", type=int, default=8, help="world eval images (40 questions per image)")
    p.add_argument("--batch", type=int, default=16, help="batch size of the batched run")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--llm-hidden", type=int, default=64)
    p.add_argument("--llm-layers", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from sea.config import compose
    from sea.eval.runner import AnswerGenerator, benchmark_specs, load_questions
    from sea.models.tiny import build_tiny_mllm
    from sea.stages.base import select
    from sea.world.generate import generate_world

    with tempfile.TemporaryDirectory(prefix="sea-eval-bench-") as tmp:
        root = Path(tmp)
        cfg = compose(["experiment=tiny", f"paths.root={root}", f"data.world.n_eval={args.n_eval}"])
        generate_world(select(cfg, "data.world"), int(cfg.seed), Path(cfg.paths.world))
        model = build_tiny_mllm(
            root / "model",
            max_length=512,
            hidden_size=args.llm_hidden,
            intermediate_size=2 * args.llm_hidden,
            num_hidden_layers=args.llm_layers,
        )
        model = model.to(args.device).eval()
        gen = AnswerGenerator(model, "vicuna_v1")
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

        t1, single = run(1)
        tb, batched = run(args.batch)
    same = sum(a == b for a, b in zip(single, batched, strict=True))
    threads = torch.get_num_threads()
    print(
        f"device {args.device}, torch threads {threads}, {n} questions, max_new_tokens {args.max_new_tokens}"
    )
    print(f"batch 1:  {t1:7.2f} s  {n / t1:8.1f} questions/s")
    print(f"batch {args.batch:<3d} {tb:7.2f} s  {n / tb:8.1f} questions/s")
    print(f"speed ratio (batched / batch 1): {t1 / tb:.1f}x; identical answers: {same}/{n}")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
