"""The paper's other vision towers, tiny and random, loaded through the real code path from local files:
a SigLIP-style open_clip model (timm ViT trunk, attention-pool head, no CLS, HF tokenizer) and timm's
DINOv2 (CLS + register tokens, no text tower). LLaVA's feature selection, the joint-space patch tokens,
preprocessing, save/load, and the errors a user meets."""

from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import load_file

from sea.errors import SeaError
from sea.models.timm_tower import TimmTower
from sea.models.vision import OpenClipTower, VisionTower


@pytest.fixture(scope="module")
def siglip_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sea.models.tiny import tiny_siglip_cfg

    return tiny_siglip_cfg(tmp_path_factory.mktemp("siglip"))


@pytest.fixture(scope="module")
def siglip(siglip_cfg: dict) -> OpenClipTower:
    return VisionTower.from_config(siglip_cfg)


@pytest.fixture(scope="module")
def dino_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sea.models.tiny import tiny_dinov2_cfg

    return tiny_dinov2_cfg(tmp_path_factory.mktemp("dinov2"))


@pytest.fixture(scope="module")
def dino(dino_cfg: dict) -> TimmTower:
    return VisionTower.from_config(dino_cfg)


def pixels(size: int, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def timm_states(trunk: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """timm's own per-block outputs (prefix tokens first), from `forward_intermediates`."""
    out = trunk.forward_intermediates(x, output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True)
    return [torch.cat([o[1], o[0]], dim=1) if isinstance(o, tuple) else o for o in out]


# ---- SigLIP through open_clip's timm trunk ---------------------------------------------------------
def test_siglip_geometry_and_weights(siglip: OpenClipTower, siglip_cfg: dict) -> None:
    assert isinstance(siglip, OpenClipTower) and siglip.trunk is not None
    assert siglip.grid == (5, 5) and siglip.patch_size == (6, 6) and siglip.image_size == (32, 32)
    assert siglip.num_prefix_tokens == 0 and not siglip.has_cls  # SigLIP has no CLS
    assert siglip.hidden_size == 32 and siglip.embed_dim == 32 and siglip.num_layers == 3
    saved, own = load_file(siglip_cfg["pretrained"]), siglip.clip.state_dict()
    assert set(saved) == set(own)
    for key, value in saved.items():
        torch.testing.assert_close(own[key], value)


def test_siglip_features_are_llava_feature_select(siglip: OpenClipTower, siglip_cfg: dict) -> None:
    x = pixels(32)
    with torch.no_grad():
        states = timm_states(siglip.trunk, x)
    assert len(states) == 3
    out = siglip(x)
    assert out.shape == (2, 25, 32)  # every token is a patch: nothing dropped
    torch.testing.assert_close(out, states[-2])  # penultimate block, raw (no final norm)
    torch.testing.assert_close(siglip.hidden_state(x, -1), states[-1])
    torch.testing.assert_close(siglip.hidden_state(x, 1), states[0])
    assert not torch.allclose(out, siglip.trunk.norm(states[-2]))
    with pytest.raises(SeaError, match="CLS"):
        VisionTower.from_config({**siglip_cfg, "select_feature": "cls_patch"})


def test_siglip_proj_tokens_are_the_attention_pool_on_each_token(siglip: OpenClipTower) -> None:
    """'proj': each final token through SigLIP's pooling head as its only key (softmax over one key = 1)."""
    x = pixels(32)
    trunk = siglip.trunk
    with torch.no_grad():
        tokens = trunk.norm(timm_states(trunk, x)[-1])
        expected = torch.stack([trunk.attn_pool(tokens[:, i : i + 1]) for i in range(25)], dim=1)
        pooled = torch.nn.functional.normalize(trunk.attn_pool(tokens), dim=-1)
    torch.testing.assert_close(siglip.encode_image(x), pooled)  # the same head over all tokens at once
    got = siglip.joint_patch_tokens(x, "proj")
    assert got.shape == (2, 25, 32)
    torch.testing.assert_close(got, expected)


def test_siglip_maskclip_is_self_attention_only_in_the_last_block(siglip: OpenClipTower) -> None:
    x = pixels(32)
    trunk = siglip.trunk
    last = trunk.blocks[-1]
    with torch.no_grad():
        h = timm_states(trunk, x)[-2]
        self_only = torch.full((25, 25), float("-inf")).fill_diagonal_(0.0)
        attn = last.ls1(last.attn(last.norm1(h), attn_mask=self_only))
        tokens = trunk.norm(attn)
        expected = torch.stack([trunk.attn_pool(tokens[:, i : i + 1]) for i in range(25)], dim=1)
    got = siglip.joint_patch_tokens(x, "maskclip")
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, siglip.joint_patch_tokens(x, "proj"))


def test_siglip_text_preprocessing_and_round_trip(siglip: OpenClipTower, tmp_path) -> None:
    from PIL import Image

    words = ["red", "blue circle"]
    feats = siglip.encode_text(words)
    assert feats.shape == (2, 32)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(2))
    assert siglip.tokenizer(words).shape == (2, 16)
    sig = siglip.preprocess_signature()
    assert sig["resize_mode"] == "squash" and sig["mean"] == [0.5] * 3 and sig["image_size"] == [32, 32]
    wide = Image.new("RGB", (64, 32), (255, 255, 255))
    wide.paste((255, 0, 0), (0, 0, 32, 32))  # left half red: squashed, the left half of the input is red
    img = siglip.preprocess(wide)
    assert img.shape == (3, 32, 32) and img[0, :, 2].mean() > 0.9 and img[1, :, 2].mean() < -0.9

    siglip.save(tmp_path / "vision")
    again = VisionTower.load(tmp_path / "vision")
    x = pixels(32)
    assert isinstance(again, OpenClipTower) and again.trunk is not None
    torch.testing.assert_close(again(x), siglip(x))
    torch.testing.assert_close(again.encode_text(words), feats)
    assert again.preprocess_signature()["resize_mode"] == "squash"


# ---- DINOv2 through timm ----------------------------------------------------------------------------
def test_dinov2_geometry_weights_and_preprocessing(dino: TimmTower, dino_cfg: dict) -> None:
    from PIL import Image

    assert isinstance(dino, TimmTower) and dino.grid == (6, 6) and dino.image_size == (36, 36)
    assert dino.num_prefix_tokens == 5 and dino.has_cls  # CLS + 4 registers
    assert dino.hidden_size == 32 and dino.num_layers == 3
    saved, own = load_file(dino_cfg["pretrained"]), dino.visual.state_dict()
    assert set(saved) == set(own)
    for key, value in saved.items():
        torch.testing.assert_close(own[key], value)
    sig = dino.preprocess_signature()
    assert sig["resize_mode"] == "shortest" and sig["image_size"] == [36, 36] and sig["patch_size"] == [6, 6]
    assert sig["mean"] == pytest.approx([0.485, 0.456, 0.406]) and sig["interpolation"] == "bicubic"
    assert dino.preprocess(Image.new("RGB", (80, 50))).shape == (3, 36, 36)
    squash = VisionTower.from_config({**dino_cfg, "resize_mode": "squash"})
    assert squash.preprocess_signature()["resize_mode"] == "squash"
    # weights made for another input size load with the position embedding resampled (as the real
    # 518-px DINOv2 weights do at 224): a 4 x 4 grid at 24 px
    small = VisionTower.from_config({**dino_cfg, "image_size": 24})
    assert small.grid == (4, 4) and small.preprocess_signature()["image_size"] == [24, 24]
    assert small(pixels(24)).shape == (2, 16, 32)
    torch.testing.assert_close(small.visual.blocks[0].attn.qkv.weight, dino.visual.blocks[0].attn.qkv.weight)


def test_dinov2_features_drop_cls_and_registers(dino: TimmTower, dino_cfg: dict) -> None:
    x = pixels(36)
    with torch.no_grad():
        out = dino.visual.forward_intermediates(
            x, output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True
        )
    (spatial, prefix) = out[-2]
    got = dino(x)
    assert got.shape == (2, 36, 32) and dino.num_tokens == 36
    torch.testing.assert_close(got, spatial)  # penultimate block, raw, prefix tokens dropped
    torch.testing.assert_close(dino.hidden_state(x, -2), torch.cat([prefix, spatial], dim=1))
    with torch.no_grad():
        embeds = dino.visual.norm_pre(dino.visual._pos_embed(dino.visual.patch_embed(x)))
    torch.testing.assert_close(dino.hidden_state(x, 0), embeds)
    cls = VisionTower.from_config({**dino_cfg, "select_feature": "cls_patch"})
    both = cls(x)
    assert both.shape == (2, 37, 32) and cls.num_tokens == 37
    torch.testing.assert_close(both, torch.cat([prefix[:, :1], spatial], dim=1))  # CLS kept, registers not
    assert not any(p.requires_grad for p in dino.parameters())
    assert not dino(x.clone().requires_grad_(True)).requires_grad


def test_dinov2_round_trip_and_no_text_tower(dino: TimmTower, tmp_path) -> None:
    dino.save(tmp_path / "vision")
    again = VisionTower.load(tmp_path / "vision", select_layer=-2)
    x = pixels(36)
    assert isinstance(again, TimmTower)
    torch.testing.assert_close(again(x), dino(x))
    assert again.preprocess_signature() == dino.preprocess_signature()
    for call in (lambda: dino.encode_text(["red"]), lambda: dino.joint_patch_tokens(x)):
        with pytest.raises(SeaError, match="no text tower.*label.teacher"):
            call()


def test_dinov2_config_errors(dino_cfg: dict, tmp_path) -> None:
    with pytest.raises(SeaError, match="not found"):
        VisionTower.from_config({**dino_cfg, "pretrained": str(tmp_path / "missing.safetensors")})
    with pytest.raises(SeaError, match="unknown timm model"):
        VisionTower.from_config({**dino_cfg, "name": "vit_nonexistent_dinov2"})
    with pytest.raises(SeaError, match=r"patch_size=14 but .* has patch_size \(6, 6\)"):
        VisionTower.from_config({**dino_cfg, "patch_size": 14})
    with pytest.raises(SeaError, match="library"):
        VisionTower.from_config({**dino_cfg, "library": "torchvision"})
    with pytest.raises(SeaError, match="not a saved vision tower"):
        VisionTower.load(tmp_path)


@pytest.mark.parametrize(
    "preset,repo",
    [
        ("siglip_so400m_384", "timm/ViT-SO400M-14-SigLIP-384"),
        ("dinov2_l14", "timm/vit_large_patch14_dinov2.lvd142m"),
    ],
)
def test_real_presets_fail_fast_offline_with_the_download_command(preset: str, repo: str) -> None:
    """The presets name the real hub weights; offline (this machine) they fail at once, before a
    400M-parameter random model is built, with the command that fetches them."""
    from sea.config import compose

    vcfg = compose([f"model/vision={preset}"]).model.vision
    start = time.monotonic()
    with pytest.raises(SeaError) as info:
        VisionTower.from_config(vcfg)
    assert time.monotonic() - start < 10
    assert f"huggingface-cli download {repo}" in str(info.value) and vcfg.name in str(info.value)


def test_siglip_labels_with_its_own_text_tower(siglip: OpenClipTower) -> None:
    """SigLIP needs no teacher: the labeler scores its joint-space patch tokens against its own words."""
    from sea.labeling.labeler import Labeler, LabelSettings
    from sea.labeling.text import word_embeddings

    words = ["red", "green", "circle", "square", "star"]
    text, _ = word_embeddings(siglip, words)
    ids, scores = Labeler(siglip, text, words, LabelSettings(top_n=3, min_score=-1.0)).label_batch(pixels(32))
    assert ids.shape == scores.shape == (2, 25, 3)
    assert ((ids >= 0) & (ids < len(words))).all() and (scores[..., :-1] >= scores[..., 1:]).all()


def test_presets_compose_with_the_towers() -> None:
    """The paper's rows: the Vicuna-7B preset with SigLIP (own labels) or DINOv2 (CLIP-L@336 teacher)."""
    from sea.config import compose

    cfg = compose(
        [
            "experiment=sea_llava15_vicuna7b",
            "model/vision=dinov2_l14",
            "+model/vision@label.teacher=clip_l14_336",
        ]
    )
    assert cfg.model.vision.library == "timm" and cfg.model.vision.image_size == 224
    assert cfg.label.teacher.name == "ViT-L-14-336-quickgelu" and cfg.label.teacher.resize_mode is None
    cfg = compose(["experiment=sea_llava15_vicuna7b", "model/vision=siglip_so400m_384"])
    assert cfg.model.vision.name == "ViT-SO400M-14-SigLIP-384" and cfg.label.teacher is None
