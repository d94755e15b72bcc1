"""VisionTower: LLaVA-style layer selection, joint-space patch tokens, freezing, loading, errors."""

from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import load_file

from sea.errors import SeaError
from sea.models.vision import VisionTower


def manual_hidden_states(tower: VisionTower, images: torch.Tensor) -> list[torch.Tensor]:
    """HF-style hidden_states: [embeddings after ln_pre, block 1 output, ..., block n output]."""
    v = tower.visual
    x = v._embeds(images)
    states = [x]
    for block in v.transformer.resblocks:
        x = block(x)
        states.append(x)
    return states


def test_geometry(tower: VisionTower, images: torch.Tensor) -> None:
    assert tower.grid == (4, 4)
    assert tower.num_patches == 16 and tower.num_tokens == 16
    assert tower.hidden_size == 32 and tower.embed_dim == 16
    assert tower.image_size == (32, 32) and tower.patch_size == (8, 8)
    assert tower(images).shape == (3, 16, 32)
    assert tower.joint_patch_tokens(images).shape == (3, 16, 16)


def test_penultimate_layer_patch_tokens_match_a_manual_forward(
    tower: VisionTower, images: torch.Tensor
) -> None:
    with torch.no_grad():
        states = manual_hidden_states(tower, images)
    assert tower.select_layer == -2 and tower.select_feature == "patch"
    torch.testing.assert_close(tower(images), states[-2][:, 1:])  # CLS dropped, raw (no ln_post)
    torch.testing.assert_close(tower.hidden_state(images, -1), states[-1])
    torch.testing.assert_close(tower.hidden_state(images, 0), states[0])
    torch.testing.assert_close(tower.hidden_state(images, 1), states[1])
    assert not torch.allclose(tower(images), tower.visual.ln_post(states[-2][:, 1:]))


def test_cls_patch_keeps_cls(vision_cfg: dict, images: torch.Tensor, tower: VisionTower) -> None:
    cls_tower = VisionTower.from_config({**vision_cfg, "select_feature": "cls_patch", "select_layer": -1})
    out = cls_tower(images)
    assert out.shape == (3, 17, 32) and cls_tower.num_tokens == 17
    with torch.no_grad():
        torch.testing.assert_close(out, manual_hidden_states(tower, images)[-1])


def test_bad_select_options(vision_cfg: dict) -> None:
    with pytest.raises(SeaError, match="select_feature"):
        VisionTower.from_config({**vision_cfg, "select_feature": "mean"})
    with pytest.raises(SeaError, match="select_layer"):
        VisionTower.from_config({**vision_cfg, "select_layer": -4})


def test_frozen(tower: VisionTower, images: torch.Tensor) -> None:
    assert all(not p.requires_grad for p in tower.parameters())
    tower.train()
    assert not tower.training and not tower.visual.training
    x = images.clone().requires_grad_(True)
    assert not tower(x).requires_grad


def test_weights_come_from_the_pretrained_file(vision_cfg: dict, tower: VisionTower) -> None:
    saved = load_file(vision_cfg["pretrained"])
    own = tower.clip.state_dict()
    assert set(saved) == set(own)
    for key, value in saved.items():
        torch.testing.assert_close(own[key], value)


def test_proj_variant_matches_open_clip_output_tokens(tower: VisionTower, images: torch.Tensor) -> None:
    visual = tower.visual
    visual.output_tokens = True
    try:
        with torch.no_grad():
            _, tokens = visual(images)  # after ln_post, before proj
    finally:
        visual.output_tokens = False
    torch.testing.assert_close(tower.joint_patch_tokens(images, "proj"), tokens @ visual.proj)


def test_maskclip_is_self_attention_only_in_the_last_block(tower: VisionTower, images: torch.Tensor) -> None:
    """MaskCLIP's value path equals the last block's attention with every token attending only to itself
    (softmax over one key = 1), without residual or MLP."""
    v = tower.visual
    last = v.transformer.resblocks[-1]
    with torch.no_grad():
        x = manual_hidden_states(tower, images)[-2]
        n = x.shape[1]
        self_only = torch.full((n, n), float("-inf")).fill_diagonal_(0.0)
        attn = last.attn(last.ln_1(x), last.ln_1(x), last.ln_1(x), attn_mask=self_only, need_weights=False)[0]
        expected = v.ln_post(attn[:, 1:]) @ v.proj
    torch.testing.assert_close(tower.joint_patch_tokens(images, "maskclip"), expected)
    assert not torch.allclose(expected, tower.joint_patch_tokens(images, "proj"))
    with pytest.raises(SeaError, match="variant"):
        tower.joint_patch_tokens(images, "surgery")


def test_encode_text_is_normalised_and_uses_the_model_tokenizer(tower: VisionTower) -> None:
    words = ["red", "blue circle", "a photo of a star"]
    feats = tower.encode_text(words, batch_size=2)
    assert feats.shape == (3, 16)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3))
    with torch.no_grad():
        ref = tower.clip.encode_text(tower.tokenizer(words), normalize=True)
    torch.testing.assert_close(feats, ref)
    assert tower.tokenizer(words).shape == (3, 16)  # the model's context length
    assert tower.encode_image(torch.zeros(2, 3, 32, 32)).shape == (2, 16)


def test_preprocess_and_signature(tower: VisionTower) -> None:
    from PIL import Image

    pixels = tower.preprocess(Image.new("RGB", (50, 40), (200, 10, 10)))
    assert pixels.shape == (3, 32, 32)
    sig = tower.preprocess_signature()
    assert sig["image_size"] == [32, 32] and sig["patch_size"] == [8, 8]
    assert sig["resize_mode"] == "shortest" and sig["interpolation"] == "bicubic"
    assert len(sig["mean"]) == 3 and len(sig["std"]) == 3


def test_save_load_round_trip(tmp_path, tower: VisionTower, images: torch.Tensor) -> None:
    tower.save(tmp_path / "vision")
    again = VisionTower.load(tmp_path / "vision", select_layer=-2, select_feature="patch")
    torch.testing.assert_close(again(images), tower(images))
    torch.testing.assert_close(again.encode_text(["red"]), tower.encode_text(["red"]))
    assert again.preprocess_signature() == tower.preprocess_signature()


def test_geometry_config_mismatch(vision_cfg: dict) -> None:
    with pytest.raises(SeaError, match="image_size"):
        VisionTower.from_config({**vision_cfg, "image_size": 64})


def test_missing_files_raise_sea_error(vision_cfg: dict, tmp_path) -> None:
    with pytest.raises(SeaError, match="backbones"):
        VisionTower.from_config({**vision_cfg, "model_config": str(tmp_path / "tiny-clip-test.json")})
    with pytest.raises(SeaError, match="not found"):
        VisionTower.from_config({**vision_cfg, "pretrained": str(tmp_path / "missing.safetensors")})
    with pytest.raises(SeaError, match="file stem"):
        VisionTower.from_config({**vision_cfg, "name": "other-name"})


def test_hub_weights_offline_fail_fast_with_a_clear_message() -> None:
    start = time.monotonic()
    with pytest.raises(SeaError) as info:
        VisionTower.from_config({"name": "ViT-B-32-quickgelu", "pretrained": "openai"})
    assert time.monotonic() - start < 15
    msg = str(info.value)
    assert "ViT-B-32-quickgelu" in msg and "openai" in msg and "huggingface-cli download" in msg
