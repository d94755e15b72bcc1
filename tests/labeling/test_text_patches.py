"""Word embeddings (templates, cache keyed by model + word list + prompt) and patch features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sea.errors import SeaError
from sea.labeling.patches import patch_features
from sea.labeling.text import embed_words, model_fingerprint, word_embeddings

WORDS = ["red", "green", "circle", "square", "background"]


def test_embeddings_are_normalised_and_cached(tower, tmp_path: Path) -> None:
    emb, info = word_embeddings(tower, WORDS, "{}", tmp_path)
    assert emb.shape == (5, tower.embed_dim) and not info["cached"]
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(emb, tower.encode_text(WORDS).float())
    again, info2 = word_embeddings(tower, WORDS, "{}", tmp_path)
    assert info2["cached"] and torch.equal(again, emb)
    assert len(list(tmp_path.glob("text-*.safetensors"))) == 1


def test_cache_key_follows_words_template_and_model(tower, tmp_path: Path) -> None:
    keys = {
        word_embeddings(tower, WORDS, "{}", tmp_path)[1]["cache_key"],
        word_embeddings(tower, WORDS[:-1], "{}", tmp_path)[1]["cache_key"],
        word_embeddings(tower, WORDS, "a photo of a {}.", tmp_path)[1]["cache_key"],
    }
    assert len(keys) == 3
    fp = model_fingerprint(tower)
    with torch.no_grad():
        tower.clip.token_embedding.weight[0, 0] += 1.0
    try:
        assert model_fingerprint(tower) != fp
    finally:
        with torch.no_grad():
            tower.clip.token_embedding.weight[0, 0] -= 1.0


def test_template_ensemble(tower) -> None:
    templates = ["{}", "a photo of a {}."]
    emb = embed_words(tower, WORDS, templates)
    a, b = tower.encode_text(WORDS).float(), tower.encode_text([f"a photo of a {w}." for w in WORDS]).float()
    torch.testing.assert_close(emb, torch.nn.functional.normalize(a + b, dim=-1))


def test_bad_template(tower) -> None:
    with pytest.raises(SeaError, match="exactly once"):
        word_embeddings(tower, WORDS, "a photo")


@pytest.mark.parametrize("feature", ["proj", "maskclip"])
def test_patch_features(tower, images: torch.Tensor, feature: str) -> None:
    f = patch_features(tower, images, feature)
    assert f.shape == (3, tower.num_patches, tower.embed_dim) and f.dtype == torch.float32
    torch.testing.assert_close(f.norm(dim=-1), torch.ones(3, tower.num_patches))
    raw = tower.joint_patch_tokens(images, variant=feature)
    torch.testing.assert_close(f, torch.nn.functional.normalize(raw, dim=-1))


def test_unknown_feature(tower, images: torch.Tensor) -> None:
    with pytest.raises(SeaError, match="label.feature"):
        patch_features(tower, images, "cls")
