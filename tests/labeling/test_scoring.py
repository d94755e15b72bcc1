"""Batched top-n scoring against a naive per-patch loop; sign, threshold, background filters, padding."""

from __future__ import annotations

import pytest
import torch

from sea.errors import SeaError
from sea.labeling.scoring import EMPTY_ID, BackgroundFilter, score_patches


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.normalize(x, dim=-1)


def naive(
    feats: torch.Tensor, text: torch.Tensor, n: int, sign: float, min_score: float
) -> tuple[list, list]:
    """Per image, per patch: similarities, sort, keep > min_score (the reference)."""
    ids, scores = [], []
    for img in feats:
        for v in img:
            sim = sign * (text @ v)
            order = torch.argsort(sim, descending=True)[:n]
            kept = [int(j) for j in order if sim[j] > min_score]
            ids.append(kept + [EMPTY_ID] * (n - len(kept)))
            scores.append([float(sim[j]) for j in kept] + [0.0] * (n - len(kept)))
    return ids, scores


@pytest.mark.parametrize("sign,value", [("cosine", 1.0), ("neg_cosine", -1.0)])
def test_batched_matches_naive_loop(sign: str, value: float) -> None:
    feats, text = unit(2, 6, 8), unit(40, 8, seed=1)
    ids, scores = score_patches(feats, text, top_n=10, sign=sign, min_score=0.0)
    assert ids.shape == scores.shape == (2, 6, 10)
    assert ids.dtype == torch.int32 and scores.dtype == torch.float16
    ref_ids, ref_scores = naive(feats, text, 10, value, 0.0)
    assert ids.reshape(-1, 10).tolist() == ref_ids
    torch.testing.assert_close(scores.reshape(-1, 10).float(), torch.tensor(ref_scores), atol=1e-3, rtol=0)
    assert (scores[ids == EMPTY_ID] == 0).all() and (scores[ids >= 0] > 0).all()


def test_chunking_does_not_change_results() -> None:
    feats, text = unit(3, 16, 8), unit(50, 8, seed=1)
    a = score_patches(feats, text, chunk_elems=1 << 20)
    b = score_patches(feats, text, chunk_elems=50 * 5)  # 5 patches a chunk
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_threshold_and_padding() -> None:
    feats, text = unit(1, 4, 8), unit(3, 8, seed=1)
    ids, scores = score_patches(feats, text, top_n=10, min_score=-2.0)  # fewer words than slots
    assert ids.shape == (1, 4, 10)
    assert (ids[..., :3] >= 0).all() and (ids[..., 3:] == EMPTY_ID).all()
    ids, _ = score_patches(feats, text, top_n=10, min_score=2.0)  # nothing passes
    assert (ids == EMPTY_ID).all()


def test_margin_filter_drops_patches_near_the_image_mean() -> None:
    text = torch.eye(4)
    # patch 0 matches word 0 strongly, the others weakly: only patch 0 stands out
    feats = torch.nn.functional.normalize(
        torch.tensor([[[1.0, 0, 0, 0], [0.2, 1, 1, 1], [0.1, 1, 1, 1.1], [0.15, 1.1, 1, 1]]]), dim=-1
    )
    ids, _ = score_patches(feats, text, top_n=2, background=BackgroundFilter("margin", 0.0))
    assert ids[0, 0, 0] == 0
    assert (ids[0, 1:] == EMPTY_ID).all()
    ids, _ = score_patches(feats, text, top_n=2, background=BackgroundFilter("margin", 5.0))
    assert (ids == EMPTY_ID).all()


def test_mean_sim_filter_drops_patches_like_the_image_mean() -> None:
    text = torch.eye(4)
    # three near-identical background patches dominate the mean; patch 3 differs
    raw = torch.tensor([[[1.0, 0.1, 0, 0], [1.0, 0, 0.1, 0], [1.0, 0.05, 0.05, 0], [0, 0, 0, 1.0]]])
    feats = torch.nn.functional.normalize(raw, dim=-1)
    ids, _ = score_patches(feats, text, top_n=2, background=BackgroundFilter("mean_sim", threshold=0.9))
    assert (ids[0, :3] == EMPTY_ID).all() and ids[0, 3, 0] == 3
    ids, _ = score_patches(feats, text, top_n=2, background=BackgroundFilter("mean_sim", threshold=1.0))
    assert (ids[..., 0] >= 0).all()


def test_word_filter() -> None:
    text = torch.eye(3)
    feats = torch.eye(3)[None]  # patch i's top word is word i
    flt = BackgroundFilter("word", words=("background",))
    words = ["red", "background", "circle"]
    ids, _ = score_patches(feats, text, top_n=3, background=flt, bg_word_ids=flt.word_ids(words))
    assert (ids[0, 1] == EMPTY_ID).all()
    assert ids[0, 0, 0] == 0 and ids[0, 2, 0] == 2


def test_mean_sim_word_filter_drops_what_either_filter_drops() -> None:
    text = torch.eye(4)
    # patches 0-2 dominate the mean (mean_sim drops them); patch 3's top word is "background" (word drops it);
    # patch 4 differs from the mean and its top word is an object word: kept
    raw = torch.tensor(
        [[[1.0, 0.1, 0, 0], [1.0, 0, 0.1, 0], [1.0, 0.05, 0.05, 0], [0, 0, 0, 1.0], [0, 1.0, 0, 0]]]
    )
    feats = torch.nn.functional.normalize(raw, dim=-1)
    flt = BackgroundFilter("mean_sim_word", threshold=0.85, words=("background",))
    words = ["red", "circle", "blue", "background"]
    ids, _ = score_patches(feats, text, top_n=2, background=flt, bg_word_ids=flt.word_ids(words))
    assert (ids[0, :4] == EMPTY_ID).all() and ids[0, 4, 0] == 1
    assert flt.name() == "mean_sim_0.85_word_background"


def test_bad_options() -> None:
    with pytest.raises(SeaError, match="label.sign"):
        score_patches(unit(1, 2, 4), unit(3, 4), sign="dot")
    with pytest.raises(SeaError, match="background.mode"):
        BackgroundFilter("auto")


def test_word_centring_ranks_words_by_similarity_minus_their_mean_similarity() -> None:
    from sea.labeling.scoring import mean_feature

    feats, text = unit(3, 10, 8), unit(12, 8, seed=1)
    center = mean_feature(feats)
    ids, scores = score_patches(feats, text, top_n=12, min_score=-9.0, center=center)
    sim = feats @ text.T  # (3, 10, 12)
    centred = sim - sim.reshape(-1, 12).mean(0)  # each word minus its mean over every patch
    ref_scores, ref_ids = centred.topk(12, dim=-1)
    assert torch.equal(ids.long(), ref_ids)
    torch.testing.assert_close(scores.float(), ref_scores, atol=2e-3, rtol=0)


def test_word_centring_stops_a_hub_word_taking_every_patch() -> None:
    # word 0 is close to every patch (a "hub"); words 1 and 2 each match half of the patches a bit better
    # than the others do, but less than the hub
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    hub = torch.nn.functional.normalize(torch.tensor([1.0, 1.0, 3.0]), dim=0)
    feats = torch.nn.functional.normalize(torch.stack([a + 0.1 * b, a, b + 0.1 * a, b]) + hub, dim=-1)[None]
    text = torch.stack([hub, a, b])
    plain, _ = score_patches(feats, text, top_n=1)
    assert plain[0, :, 0].tolist() == [0, 0, 0, 0]
    from sea.labeling.scoring import mean_feature

    centred, _ = score_patches(feats, text, top_n=1, center=mean_feature(feats))
    assert centred[0, :, 0].tolist() == [1, 1, 2, 2]


def test_draw_probabilities_are_how_often_align_draws_each_label() -> None:
    from sea.labeling.scoring import draw_probabilities
    from sea.training.sea_loss import sample_labels

    ids = torch.tensor([[4, 7, 2, -1], [5, -1, -1, -1], [1, 3, 6, 0]])
    scores = torch.tensor([[0.6, 0.3, 0.1, 0.0], [0.2, 0.0, 0.0, 0.0], [0.5, 0.5, -0.1, 0.0]])
    p = draw_probabilities(ids, scores)
    n = 20000
    u = torch.rand(n, generator=torch.Generator().manual_seed(0))
    for row in range(3):
        words, ok = sample_labels(ids[row].expand(n, -1), scores[row].expand(n, -1), u)
        assert ok.all()
        freq = torch.stack([(words == w).float().mean() for w in ids[row]])
        torch.testing.assert_close(
            freq, p[row], atol=0.015, rtol=0
        )  # unusable slots (score <= 0) never drawn
