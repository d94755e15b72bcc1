"""`sea export`: a saved SeaMLLM as transformers' LLaVA (model, processor, chat template) computes what
ours computes: same prompt ids, same pixels, same logits, same greedy answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sea.data.llava import IMAGE_TOKEN_INDEX
from sea.data.templates import build_prompt_for_generation, end_of_turn_ids
from sea.errors import SeaError

QUESTION = "What is the colour of the shape in the image?"
ANSWER = "The circle is red."
FOLLOW_UP = "Is there a blue square?"

# case -> (LLM family of the tiny stand-in, our template for it, tower variant). The tiny world's Llama
# uses LLaVA-1.5's vicuna_v1, the real-architecture stand-ins of conf/model/llm their tokenizer's chat
# template. Towers: GELU, patch tokens of layer -2 (LLaVA-1.5), or QuickGELU with CLS + patches of the
# last layer (HF strategy 'full').
CASES = {
    "llama": ("llama", "vicuna_v1", "gelu-patch"),
    "gemma": ("gemma", "chat", "gelu-patch"),
    "qwen2": ("qwen2", "chat", "gelu-patch"),
    "llama-quickgelu-cls": ("llama", "vicuna_v1", "quickgelu-cls"),
}


def _tower_cfg(directory: Path, variant: str) -> dict | None:
    from sea.models.tiny import TINY_CLIP_NAME, _write_open_clip, tiny_open_clip_config

    if variant == "gelu-patch":
        return None
    config_path, weights_path = _write_open_clip(
        directory, TINY_CLIP_NAME + "-qg", {**tiny_open_clip_config(), "quick_gelu": True}, seed=3
    )
    return {
        "name": TINY_CLIP_NAME + "-qg",
        "model_config": str(config_path),
        "pretrained": str(weights_path),
        "select_layer": -1,
        "select_feature": "cls_patch",
    }


@pytest.fixture(scope="module", params=sorted(CASES))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from sea.__main__ import main
    from sea.models.mllm import SeaMLLM
    from sea.models.tiny import build_tiny_mllm

    case = request.param
    family, _, variant = CASES[case]
    root = tmp_path_factory.mktemp(f"export-{case}")
    vcfg = _tower_cfg(root / "clip", variant)
    build_tiny_mllm(root / "build", family=family, max_length=256, vision_cfg=vcfg).save_pretrained(
        root / "src"
    )
    assert main(["export", str(root / "src"), str(root / "hf")]) == 0
    ours = SeaMLLM.load(root / "src").eval()
    model = LlavaForConditionalGeneration.from_pretrained(root / "hf").eval()
    processor = AutoProcessor.from_pretrained(root / "hf", backend="pil")
    return case, ours, model, processor, root


def _image(width: int = 48, height: int = 40):
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _turns(multi: bool) -> tuple[list[dict], list[dict]]:
    """The same conversation as LLaVA turns (ours) and HF messages (the processor's)."""
    ours = [{"from": "human", "value": QUESTION + "\n<image>"}]
    hf = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    if multi:
        ours += [{"from": "gpt", "value": ANSWER}, {"from": "human", "value": FOLLOW_UP}]
        hf += [
            {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
            {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},
        ]
    return ours, hf


def _expand(ids: list[int], image_token_id: int, n: int) -> list[int]:
    out: list[int] = []
    for i in ids:
        out += [image_token_id] * n if i == IMAGE_TOKEN_INDEX else [i]
    return out


@pytest.mark.parametrize("multi", [False, True], ids=["one-turn", "two-turns"])
def test_export_matches_ours(exported, multi: bool) -> None:
    from sea.data.llava import preprocess_image

    case, ours, model, processor, _ = exported
    template = CASES[case][1]
    image = _image()
    conv, messages = _turns(multi)
    messages[0]["content"][0]["image"] = image
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )

    # the processor's prompt ids and pixels are ours
    our_ids = build_prompt_for_generation(conv, ours.tokenizer, template)
    n = ours.vision.num_tokens
    assert model.config.image_seq_length == n
    assert inputs.input_ids[0].tolist() == _expand(our_ids, model.config.image_token_index, n)
    pixels = inputs.pixel_values
    assert torch.equal(pixels[0], preprocess_image(ours.vision, image, "pad"))

    # same logits on every position (the exported vocabulary has the extra <image> row at the end)
    vocab = ours.llm.get_input_embeddings().weight.shape[0]
    with torch.no_grad():
        theirs = model(**inputs).logits[..., :vocab]
        mine = ours(input_ids=torch.tensor([our_ids]), images=pixels).logits
    assert theirs.shape == mine.shape
    diff = float((theirs - mine).abs().max())
    assert diff < 1e-5, f"{case}: max |logit difference| {diff:.2e}"
    print(f"{case} multi={multi}: {theirs.shape[1]} positions, max |logit diff| {diff:.2e}")

    # same greedy answer
    stop = end_of_turn_ids(ours.tokenizer, template)
    mine_gen = ours.generate([our_ids], images=pixels, max_new_tokens=12, eos_token_ids=stop)[0]
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)[
        0, inputs.input_ids.shape[1] :
    ].tolist()
    theirs_gen = out[: next((i for i, t in enumerate(out) if t in stop), len(out))]
    assert len(mine_gen) > 0 and theirs_gen == mine_gen
    print(f"{case}: greedy {len(mine_gen)} tokens equal: {mine_gen}")


def test_export_torchvision_backend_is_close(exported) -> None:
    """The processor's default (torchvision) backend resizes tensors: within one 8-bit level of ours."""
    from transformers import AutoProcessor

    from sea.data.llava import preprocess_image

    _, ours, _, _, root = exported
    processor = AutoProcessor.from_pretrained(root / "hf")
    image = _image(61, 40)
    theirs = processor.image_processor(image, return_tensors="pt").pixel_values[0]
    std = torch.tensor(ours.vision.preprocess_cfg["std"]).view(3, 1, 1)
    assert float(((theirs - preprocess_image(ours.vision, image, "pad")) * std).abs().max()) <= 1.5 / 255


def test_export_refuses_what_cannot_map(tmp_path: Path, make_mllm) -> None:
    from sea.export.llava import export_llava

    make_mllm(adapter="linear").save_pretrained(tmp_path / "linear")
    with pytest.raises(SeaError, match="adapter type 'linear' cannot be exported"):
        export_llava(tmp_path / "linear", tmp_path / "out")
    make_mllm().save_pretrained(tmp_path / "ok")
    with pytest.raises(SeaError, match="no chat form"):
        export_llava(tmp_path / "ok", tmp_path / "out", template="plain")
    with pytest.raises(SeaError, match="image_aspect_ratio"):
        export_llava(tmp_path / "ok", tmp_path / "out", image_aspect_ratio="crop")
    assert not (tmp_path / "out").exists()


def test_export_refuses_timm_towers(tmp_path: Path) -> None:
    from sea.export.llava import export_llava
    from sea.models.tiny import build_tiny_mllm, tiny_dinov2_cfg

    vcfg = tiny_dinov2_cfg(tmp_path / "dino")
    build_tiny_mllm(tmp_path / "build", vision_cfg=vcfg).save_pretrained(tmp_path / "src")
    with pytest.raises(SeaError, match="only open_clip's own ViT"):
        export_llava(tmp_path / "src", tmp_path / "out")


def test_export_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sea.__main__ import main

    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sea export: error:") and "not a saved SeaMLLM" in err and "\n" not in err


def test_export_checks_the_mapped_tower(tmp_path: Path, make_mllm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapping slip (here: q and k swapped in one layer) is caught before anything is written."""
    import sea.export.llava as export

    mapped = export.clip_vision_model

    def slipped(tower):
        model = mapped(tower)
        attn = model.encoder.layers[0].self_attn
        attn.q_proj, attn.k_proj = attn.k_proj, attn.q_proj
        return model

    make_mllm().save_pretrained(tmp_path / "src")
    monkeypatch.setattr(export, "clip_vision_model", slipped)
    with pytest.raises(SeaError, match="features differ from ours"):
        export.export_llava(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()
