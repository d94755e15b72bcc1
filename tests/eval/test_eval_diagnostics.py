"""Alignment diagnostics: word embeddings (Eq. 10), nearest-word decoding (Eq. 4), modality gap (Eq. 5),
TACS (Eq. 14) and the world ground-truth accuracy, on hand-made vectors and on a tiny model."""

from __future__ import annotations

import pytest
import torch

from sea.data.llava import open_image, preprocess_image
from sea.eval.diagnostics import (
    WordTable,
    decode_accuracy,
    modality_gap,
    nearest_words,
    patch_truth,
    run_diagnostics,
    tacs,
    world_caption,
    world_words,
)


class CharTokenizer:
    """One id per character (space = 0, a = 1, ...), to check the " " + word convention."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        assert not add_special_tokens
        return [0 if ch == " " else ord(ch) - 96 for ch in text]

    def __call__(self, texts: str | list[str], add_special_tokens: bool = False) -> dict[str, list]:
        if isinstance(texts, str):
            return {"input_ids": self.encode(texts, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in texts]}


class DummyPrefixTokenizer(CharTokenizer):
    """SentencePiece's leading-space quirk: the text gets a dummy "▁" prefix and spaces become "▁", so a
    text that starts with a space gets a lone "▁" token (id 0) before its first word; a word is "▁word"
    (id 100 + a character code sum), the way Llama's and Gemma's tokenizers split " red" alone."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        pieces = ("▁" + text.replace(" ", "▁")).split("▁")[1:]
        return [0 if not p else 100 + sum(ord(c) - 96 for c in p) for p in pieces]


def test_word_embedding_is_the_mean_of_space_plus_word_tokens():
    emb = torch.arange(27 * 2, dtype=torch.float32).reshape(27, 2)
    table = WordTable.build(["ab", "c", "ab", " "], CharTokenizer(), emb)
    assert table.words == ["ab", "c"]  # de-duplicated, blanks dropped
    assert torch.allclose(table.vectors[0], (emb[0] + emb[1] + emb[2]) / 3)
    assert torch.allclose(table.vectors[1], (emb[0] + emb[3]) / 2)
    assert torch.allclose(table.unit.norm(dim=-1), torch.ones(2))


def test_diagnostics_embed_words_exactly_as_the_sea_loss_does():
    """On a tokenizer with the dummy-prefix quirk, encode(" " + word) adds a lone-space token to every
    word; the SEA loss tokenizes the word in context (no such token), and the diagnostics now share its
    function, so the two tables are identical."""
    from sea.training.sea_loss import label_embedding_table

    tok = DummyPrefixTokenizer()
    words = ["red", "circle", "blue"]
    emb = torch.nn.Embedding(200, 4)
    loss_table, has = label_embedding_table(emb, tok, words)
    table = WordTable.build(words, tok, emb.weight)
    assert has.all() and table.words == words
    assert torch.equal(table.vectors, loss_table)
    for i, w in enumerate(words):  # one token per word, without the lone "▁"
        assert torch.allclose(table.vectors[i], emb.weight[tok.encode("a " + w)[1]])
        plain = emb.weight[tok.encode(" " + w)].mean(0)  # what the diagnostics computed before
        assert not torch.allclose(table.vectors[i], plain)


def test_nearest_words_gap_and_tacs_on_known_vectors():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    table = WordTable(["east", "north", "west"], vectors, torch.nn.functional.normalize(vectors, dim=-1))
    visual = torch.tensor([[2.0, 0.1], [0.0, 1.0], [-1.0, -0.2]])
    idx, sims = nearest_words(visual, table, k=2)
    assert idx[:, 0].tolist() == [0, 1, 2]
    assert sims[1, 0] == pytest.approx(1.0)
    # min L2 distances: |(2,.1)-(1,0)|, |(0,1)-(0,2)|, |(-1,-.2)-(1,0)| vs (-3,0) -> 2.0099
    expected = (torch.tensor([1.0, 0.01]).sum().sqrt() + 1.0 + torch.tensor([4.0, 0.04]).sum().sqrt()) / 3
    assert modality_gap(visual, table) == pytest.approx(float(expected), rel=1e-5)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    best = [2.0 / (4.01**0.5), 1.0, -0.2 / (1.04**0.5)]  # max cosine of each visual token to a text token
    assert tacs(visual, text, k=2) == pytest.approx(sum(sorted(best)[-2:]) / 2)
    assert tacs(visual, text, k=10) == pytest.approx(sum(best) / 3)  # K capped at the token count


def test_patch_truth_samples_the_ground_truth_grid_at_patch_centres():
    row = {
        "background": "black",
        "objects": [{"index": 1, "color": "red", "shape": "star"}],
        "patch_objects": [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
    }
    truth = patch_truth(row, (2, 2))
    assert [t[0] for t in truth] == ["background", "object", "background", "background"]
    counts = decode_accuracy(["black", "star", "red", "white"], truth)
    assert counts == {"object": 1, "object_hit": 1, "object_color": 0, "object_shape": 1,
                      "background": 3, "background_hit": 1}  # fmt: skip
    assert world_caption(row) == "a red star on a black background"
    assert world_words([row]) == ["black", "red", "star"]


def test_run_diagnostics_on_the_world(model, world_cfg, one_thread):
    from pathlib import Path

    from sea.utils.io import read_jsonl

    rows = read_jsonl(Path(world_cfg.paths.world) / "ground_truth" / "eval.jsonl")[:3]
    pixels = [
        preprocess_image(model.vision, open_image(Path(world_cfg.paths.world) / r["image"], r["id"]))
        for r in rows
    ]
    metrics, dump = run_diagnostics(
        model, pixels, world_words(rows), [world_caption(r) for r in rows], rows, batch_size=2
    )
    n = model.vision.num_patches
    assert metrics["nearest_word/object_patches"] + metrics["nearest_word/background_patches"] == 3 * n
    assert metrics["modality_gap"] > 0 and -1 <= metrics["tacs"] <= 1
    assert 0 <= metrics["nearest_word/object_accuracy"] <= 100
    assert dump.count("image ") == 2
