"""CPU smoke tests of the benchmark scripts at tiny shapes, and checks of what their numbers rest on: the
matched HF vision depth computes the same thing, the FLOP count agrees with torch's counter, the paths
compared give the same labels / answers, and gpu_check.sh only calls what the scripts accept."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TINY_STEP = [
    "--batch", "2", "--text-len", "8", "--image-size", "32", "--patch", "8", "--vision-width", "32",
    "--vision-layers", "3", "--vision-heads", "2", "--llm-hidden", "32", "--llm-layers", "2",
    "--llm-heads", "2", "--llm-intermediate", "64", "--vocab", "300", "--device", "cpu",
]  # fmt: skip


def test_model_step_times_ours_and_both_hf_depths(bench) -> None:
    result = bench("model_step").main([*TINY_STEP, "--repeats", "2", "--warmup", "0"])
    assert set(result) == {
        "SeaMLLM",
        "HF Llava (2 vision blocks, matched)",
        "HF Llava (3 vision blocks, as shipped)",
        "ratio_matched",
        "ratio_shipped",
    }
    assert all(v > 0 and math.isfinite(v) for v in result.values())


def test_model_step_matched_hf_depth_gives_the_shipped_loss(bench) -> None:
    """L - 1 blocks + last output == L blocks + penultimate output, with the same weights; and the HF
    batch turns the KV cache off."""
    ms = bench("model_step")
    args = ms.parse_args(TINY_STEP)
    from sea.models.tiny import tiny_llm_config

    text_config = tiny_llm_config(
        "llama",
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    shipped = ms.build_hf(args, text_config, matched=False).eval()
    matched = ms.build_hf(args, text_config, matched=True).eval()
    missing, unexpected = matched.load_state_dict(shipped.state_dict(), strict=False)
    assert not missing and all(".layers.2." in k for k in unexpected) and unexpected
    _, batch = ms.make_batches(args, (32 // 8) ** 2)
    assert batch["use_cache"] is False
    with torch.no_grad():
        a, b = shipped(**batch).loss, matched(**batch).loss
    assert torch.allclose(a, b, atol=1e-6), (a, b)


def test_sea_overhead_times_four_arms(bench) -> None:
    result = bench("sea_overhead").main(["--repeats", "2", "--warmup", "0", "--batches", "1", "--batch", "2"])
    assert set(result["ms"]) == {"baseline", "baseline'", "sea_inline", "sea"}
    assert all(v > 0 for v in result["ms"].values()) and result["sampling_ms"] > 0
    assert all(math.isfinite(result[k]) and result[k] > 0 for k in ("noise", "inline", "workers"))


LABEL_TINY = ["--width", "32", "--layers", "2", "--heads", "2", "--embed-dim", "16", "--words", "50"]


def test_label_throughput_paths_give_the_same_labels(bench) -> None:
    result = bench("label_throughput").main(["--images", "4", "--batch", "2", "--repeats", "1", *LABEL_TINY])
    part1 = result["part1"]
    assert list(part1["images_per_s"]) == [
        "batched, batch 2",
        "batched, batch 1",
        "naive per-image, per-patch loop",
    ]
    for agree in part1["agreement"].values():
        assert agree["ids_identical"] == 1.0 and agree["top1_score_max_diff"] < 1e-3


@pytest.fixture
def tiny_clip_name(tmp_path: Path) -> str:
    """A tiny open_clip config registered under a name, so part 2 can build it by name."""
    import open_clip

    from sea.models.tiny import tiny_open_clip_config

    cfg = tiny_open_clip_config(image_size=32, patch_size=8, width=32, layers=2, heads=2, embed_dim=16)
    path = tmp_path / "bench-tiny-clip.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return "bench-tiny-clip"


def test_label_throughput_part2_variants_profile_and_loader(bench, tiny_clip_name: str, capsys) -> None:
    result = bench("label_throughput").main(
        [
            "--mfu-only",
            "--mfu-model", tiny_clip_name,
            "--mfu-batch", "2",
            "--mfu-words", "100",
            "--mfu-repeats", "1",
            "--variants", "autocast,bf16",
            "--peak-tflops", "1",
            "--profile",
            "--loader-images", "3",
            "--workers", "0",
        ]
    )  # fmt: skip
    part2 = result["part2"]
    assert set(part2) == {"proj/autocast", "proj/bf16", "maskclip/autocast", "maskclip/bf16"}
    assert part2["proj/autocast"]["ids_identical"] == 1.0  # the reference against itself
    assert part2["proj/bf16"]["images_per_s"] > 0 and result["loader_images_per_s"] > 0
    assert "prof| " in capsys.readouterr().out


def test_bf16_weights_keep_labels_within_tolerance(bench, tmp_path: Path) -> None:
    """The documented tolerance of the `bf16` variant against the stage's fp32 path: top-1 word identical on
    >= 95 % of patches, top-1 scores within 0.01 where it is (random tiny CLIP, q = 500 words)."""
    lt = bench("label_throughput")
    from sea.labeling.labeler import Labeler, LabelSettings
    from sea.labeling.scoring import BackgroundFilter
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    vcfg = tiny_vision_cfg(tmp_path, image_size=64, patch_size=8, width=64, layers=2, heads=2, embed_dim=32)
    tower = VisionTower.from_config(vcfg)
    text = lt.random_text(500, 32, torch.device("cpu"), 0)
    words = [f"w{i}" for i in range(500)]
    images = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    settings = LabelSettings(top_n=10, feature="maskclip", background=BackgroundFilter("mean_sim"))
    ref = Labeler(tower, text, words, settings).label_batch(images)
    bf16 = lt.prepare_tower(tower, "bf16")
    assert bf16.dtype == torch.bfloat16 and tower.dtype == torch.float32  # a copy: the reference is untouched
    out = Labeler(bf16, text, words, settings).label_batch(images.bfloat16())
    agree = lt.agreement(ref, out)
    assert agree["top1_identical"] >= 0.95, agree
    assert agree["top1_score_max_diff"] <= 0.01, agree


@pytest.mark.slow
def test_compiled_tower_keeps_labels(bench, tmp_path: Path) -> None:
    lt = bench("label_throughput")
    from sea.labeling.labeler import Labeler, LabelSettings
    from sea.models.tiny import tiny_vision_cfg
    from sea.models.vision import VisionTower

    tower = VisionTower.from_config(
        tiny_vision_cfg(tmp_path, image_size=32, patch_size=8, width=32, layers=2)
    )
    text = lt.random_text(100, tower.embed_dim, torch.device("cpu"), 0)
    words = [f"w{i}" for i in range(100)]
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ref = Labeler(tower, text, words, LabelSettings()).label_batch(images)
    out = Labeler(lt.prepare_tower(tower, "autocast+compile"), text, words, LabelSettings()).label_batch(
        images
    )
    agree = lt.agreement(ref, out)
    assert agree["top1_identical"] == 1.0 and agree["top1_score_max_diff"] < 1e-4, agree


EVAL_TINY = ["--n-eval", "1", "--n-instruct", "4", "--batch", "4", "--repeats", "1", "--max-new-tokens", "4"]


def test_eval_throughput_trains_then_answers_the_same_batched(bench) -> None:
    result = bench("eval_throughput").main([*EVAL_TINY, "--train-steps", "4", "--threads", "1"])
    assert result["questions"] > 0 and result["same"] == result["questions"]
    assert result["losses"][1] < result["losses"][0]  # the brief instruction tuning learns
    assert 0 <= result["stopped"] <= result["questions"] and result["ratio"] > 0


@pytest.mark.slow
def test_eval_throughput_gemma_shape_path(bench) -> None:
    result = bench("eval_throughput").main([*EVAL_TINY, "--shape", "gemma2b-mini", "--train-steps", "3"])
    assert result["same"] == result["questions"]


def test_train_throughput_tiny_runs_both_stages_and_models(bench, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    results = bench("train_throughput").main(
        ["--tiny", "--device", "cpu", "--steps", "1", "--warmup", "1", "--json", str(out)]
    )
    assert [r["stage"] for r in results] == ["align", "instruct"]
    for r in results:
        assert list(r["models"]) == ["ours (SeaMLLM)", "HF Llava (2 vision blocks)"]
        sea, hf = r["models"].values()
        assert sea["trainable_params"] == hf["trainable_params"] > 0  # the same parts train
        assert r["ratio"] > 0 and r["tflop_per_step"] > 0
    assert (
        results[1]["models"]["ours (SeaMLLM)"]["trainable_params"]
        > 10 * (results[0]["models"]["ours (SeaMLLM)"]["trainable_params"])
    )
    assert json.loads(out.read_text())[0]["stage"] == "align"


@pytest.mark.parametrize("stage", ["align", "instruct"])
def test_train_flop_count_matches_torch_counter(bench, stage: str) -> None:
    """llm_step_flops (non-causal, eager attention) against FlopCounterMode on a tiny Gemma fwd + bwd."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM

    from sea.models.tiny import tiny_llm_config

    tt = bench("train_throughput")
    cfg = tiny_llm_config(
        "gemma",
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
    )
    llm = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    llm.requires_grad_(stage == "instruct")
    batch, seq = 2, 24
    embeds = torch.randn(batch, seq, 64, requires_grad=True)  # stage 1: gradients reach the inputs
    with FlopCounterMode(display=False) as counter:
        llm(inputs_embeds=embeds, use_cache=False).logits.float().sum().backward()
    expected = tt.llm_step_flops(stage, cfg, batch, seq, causal=False)
    assert counter.get_total_flops() == pytest.approx(expected, rel=0.02)


def test_gpu_check_calls_only_what_the_scripts_accept(bench) -> None:
    out = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commands = [shlex.split(line) for line in out.splitlines() if line.strip()]
    scripts = [c[1] for c in commands]
    assert scripts == [
        "benchmarks/train_throughput.py",
        "benchmarks/label_throughput.py",
        "benchmarks/eval_throughput.py",
        "benchmarks/sea_overhead.py",
        "benchmarks/model_step.py",
    ]
    for cmd in commands:
        bench(Path(cmd[1]).stem).parse_args(cmd[2:])  # exits (SystemExit) on an unknown or bad option
