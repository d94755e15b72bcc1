"""The `backbones` stage on a tiny world: saved models load back through open_clip / transformers `Auto*`
and reproduce the trained models' outputs, the tokenizer covers the world's text, the stage is
deterministic, and a short training learns something."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sea.config import compose
from sea.errors import SeaError

# Step counts for tests (and for `experiment=tiny`): seconds, not minutes.
TINY = {
    "backbones.clip.steps": 32,
    "backbones.clip.batch_size": 16,
    "backbones.clip.warmup_steps": 2,
    "backbones.clip.lr": 2.0e-3,
    # Plain random batches: on a 72-image world the loss then falls clearly within 32 steps (grouped
    # batches make the task hard on purpose; average pooling learns more slowly than the class token
    # at 16); negatives, text and patch-word losses and whitening still run. The LM's 80 steps cover the
    # chat-format lines as well as the corpus.
    "backbones.clip.group_size": 1,
    "backbones.llm.steps": 80,
    "backbones.llm.lr": 5.0e-3,
    "backbones.llm.batch_size": 8,
    "backbones.llm.seq_len": 32,
    "backbones.llm.warmup_steps": 2,
}
TIMING_KEYS = ("seconds",)

# Trains the tiny CLIP and LM (minutes on two loaded cores): slow tier, until the stage is in the pipeline.
pytestmark = pytest.mark.slow


def _overrides(root: Path) -> list[str]:
    return ["experiment=tiny", "tracking=none", f"paths.root={root}", *(f"{k}={v}" for k, v in TINY.items())]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """One tiny world shared by every run of this module."""
    from sea.config import select
    from sea.world import generate_world

    cfg = compose(_overrides(tmp_path_factory.mktemp("w")))
    out = tmp_path_factory.mktemp("world") / "world"
    generate_world(select(cfg, "data.world"), int(cfg.seed), out)
    return out


def _run(root: Path, world: Path, extra: tuple[str, ...] = ()):
    from sea.stages import backbones

    cfg = compose([*_overrides(root), f"paths.world={world}", *extra])
    return cfg, backbones.run(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("run1")
    return _run(root, world)


def _non_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith((*TIMING_KEYS, "seconds_per_step"))}


def test_metrics_present_and_finite(trained):
    cfg, metrics = trained
    for key in (
        "clip/zeroshot_color_acc",
        "clip/zeroshot_shape_acc",
        "clip/zeroshot_object_acc",
        "clip/chance_object_acc",
        "clip/chance_color_acc",
        "clip/chance_shape_acc",
        "clip/retrieval_top1",
        "clip/shape_swap_acc",
        "clip/color_swap_acc",
        "clip/final_loss",
        "clip/first_loss",
        "clip/train_seconds",
        "lm/val_ppl",
        "lm/vocab_size",
        "lm/final_loss",
        "lm/first_loss",
        "lm/train_seconds",
        "seconds",
    ):
        assert key in metrics, key
    for key, value in metrics.items():
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    out = Path(cfg.paths.backbones)
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_short_training_learns(trained):
    _, m = trained
    # The contrastive loss falls, and the LM is far better than uniform over its vocabulary.
    assert m["clip/final_loss"] < m["clip/first_loss"] - 0.2
    assert m["lm/final_loss"] < m["lm/first_loss"] - 1.0
    assert m["lm/val_ppl"] < m["lm/vocab_size"] / 10
    assert m["lm/unk_rate"] == 0.0


def test_clip_loads_through_open_clip_and_matches(trained, world):
    import open_clip
    import torch
    from safetensors.torch import load_file

    from sea.backbones.clip_train import evaluate_clip
    from sea.backbones.world_data import load_arrays, read_split, read_vocabulary

    cfg, metrics = trained
    vcfg = cfg.model.vision
    assert Path(vcfg.model_config).is_file() and Path(vcfg.pretrained).is_file()
    open_clip.add_model_config(vcfg.model_config)
    model, _, preprocess = open_clip.create_model_and_transforms(vcfg.name, pretrained=vcfg.pretrained)
    tokenizer = open_clip.get_tokenizer(vcfg.name)
    saved = load_file(vcfg.pretrained)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert preprocess.transforms[0].size in (vcfg.image_size, (vcfg.image_size, vcfg.image_size))

    # The reloaded model reproduces the trained model's zero-shot numbers exactly.
    images = read_split(world, "eval")
    pixels, masks = load_arrays(images)
    vocab = read_vocabulary(world)
    again = evaluate_clip(
        model,
        preprocess,
        tokenizer,
        images,
        pixels,
        masks,
        vocab.colors,
        vocab.shapes,
        list(cfg.backbones.clip.eval_templates),
        int(cfg.seed),
        int(cfg.backbones.clip.eval_swap_negatives),
    )
    for key, value in again.items():
        assert value == pytest.approx(metrics[f"clip/{key}"], abs=1e-9), key

    # Patch tokens (what the label and align stages use) come out with the configured grid.
    model.visual.output_tokens = True
    from sea.backbones.clip_train import to_tensor_batch

    with torch.no_grad():
        pooled, tokens = model.visual(to_tensor_batch(preprocess, [pixels[0]]))
    grid = vcfg.image_size // vcfg.patch_size
    assert tokens.shape == (1, grid * grid, vcfg.width)


def test_llm_loads_through_auto_and_matches(trained, world):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sea.backbones.lm_train import evaluate_ppl, pack, read_texts

    cfg, metrics = trained
    path = Path(cfg.model.llm.name_or_path)
    assert (path / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert len(tok) == metrics["lm/vocab_size"]
    assert (tok.bos_token, tok.eos_token, tok.unk_token, tok.pad_token) == ("<s>", "</s>", "<unk>", "<pad>")
    assert model.config.vocab_size == cfg.model.llm.vocab_size >= len(tok)

    # Same held-out loss as the trained model: identical logits.
    _, val = read_texts(world, cfg.backbones.llm.val_fraction, cfg.backbones.llm.use_instruct)
    loss, _ = evaluate_ppl(model, pack(tok, val)[0], int(cfg.backbones.llm.seq_len))
    assert loss == pytest.approx(metrics["lm/val_loss"], abs=1e-6)
    with torch.no_grad():
        out = model.generate(**tok(["A red"], return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] >= 3


def test_tokenizer_round_trips_world_text(trained, world):
    from transformers import AutoTokenizer

    from sea.backbones.world_data import read_vocabulary

    cfg, _ = trained
    tok = AutoTokenizer.from_pretrained(cfg.model.llm.name_or_path)
    lines = (world / "corpus.txt").read_text().splitlines()
    instruct = json.loads((world / "instruct.json").read_text())[:20]
    lines += [t["value"] for s in instruct for t in s["conversations"]]
    lines += ["Unseen: café, naïve, 日本, emoji 🙂, tabs\tand  spaces."]
    for line in lines:
        ids = tok(line)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == line
    # The world's words are single tokens after a space (SEA's label embeddings use " " + word).
    vocab = read_vocabulary(world)
    for word in vocab.colors + vocab.shapes:
        assert len(tok(" " + word, add_special_tokens=False)["input_ids"]) == 1, word
    assert "<image>" not in tok.get_vocab()


def test_deterministic_for_a_seed(trained, world, tmp_path):
    import torch
    from safetensors.torch import load_file

    cfg1, m1 = trained
    cfg2, m2 = _run(tmp_path / "run2", world)
    assert _non_timing(m1) == _non_timing(m2)
    for a, b in (
        (cfg1.model.vision.pretrained, cfg2.model.vision.pretrained),
        (
            Path(cfg1.model.llm.name_or_path) / "model.safetensors",
            Path(cfg2.model.llm.name_or_path) / "model.safetensors",
        ),
    ):
        wa, wb = load_file(a), load_file(b)
        assert wa.keys() == wb.keys()
        # Bitwise: every op on the training path has a deterministic CPU kernel for a fixed thread count
        # (the CLIP's trained token rows use F.embedding: indexing's index_put_ backward is not).
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a
    config1, config2 = Path(cfg1.model.vision.model_config), Path(cfg2.model.vision.model_config)
    assert config1.read_text() == config2.read_text()


def test_real_source_checks_references_without_training(tmp_path):
    from sea.stages import backbones

    base = ["data=llava", "model/vision=clip_l14_336", "tracking=none", f"paths.root={tmp_path}"]
    with pytest.raises(SeaError, match="model.llm.name_or_path"):
        backbones.build(compose(base), tmp_path / "a")  # the default LLM path is a missing local folder
    (tmp_path / "b").mkdir()
    metrics = backbones.build(compose([*base, "model.llm.name_or_path=lmsys/vicuna-7b-v1.5"]), tmp_path / "b")
    assert metrics == {"real/vision_pretrained_local": 0.0, "real/llm_local": 0.0}
    refs = json.loads((tmp_path / "b" / "references.json").read_text())
    assert refs["references"]["model.vision.pretrained"] == "openai"


def test_wrong_output_paths_are_a_clear_error(tmp_path, world):
    from sea.stages import backbones

    cfg = compose([*_overrides(tmp_path), f"paths.world={world}", "model.llm.name_or_path=/elsewhere/llm"])
    with pytest.raises(SeaError, match="model.llm.name_or_path"):
        backbones.build(cfg, tmp_path / "x")


def test_pack_reads_a_tab_prefix_without_training_on_it(trained):
    from transformers import AutoTokenizer

    from sea.backbones.lm_train import pack

    cfg, _ = trained
    tok = AutoTokenizer.from_pretrained(Path(cfg.model.llm.name_or_path))
    stream, target = pack(tok, ["red red circle\tA red circle.", "A blue star."])
    prefix = tok("red red circle", add_special_tokens=False)["input_ids"]
    first = tok("A red circle.", add_special_tokens=False)["input_ids"]
    second = tok("A blue star.", add_special_tokens=False)["input_ids"]
    bos, eos = tok.bos_token_id, tok.eos_token_id
    assert stream.tolist() == [bos, *prefix, *first, eos, bos, *second, eos]
    # Only the text after the tab and its end-of-line are predicted; the prefix is context.
    expected = [False] * (1 + len(prefix)) + [True] * (len(first) + 1) + [False] + [True] * (len(second) + 1)
    assert target.tolist() == expected
