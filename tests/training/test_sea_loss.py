"""SEA loss on hand-made tensors: window sampling, label sampling, de-duplication, Eq. 10 and Eq. 11,
and where the gradients go."""

from __future__ import annotations

import math

import pytest
import torch

from sea.errors import SeaError
from sea.training.sea_loss import (
    SeaLoss,
    SeaPairs,
    SeaSettings,
    dedup_pairs,
    image_uniforms,
    label_embedding_table,
    local_info_nce,
    sample_labels,
    sample_pairs,
    sample_window_patches,
    symmetric_info_nce,
    window_table,
)


def window_of(patch: int, grid: tuple[int, int], k: int) -> tuple[int, int]:
    return (patch // grid[1]) // k, (patch % grid[1]) // k


@pytest.mark.parametrize("grid,k", [((4, 4), 2), ((5, 7), 2), ((3, 3), 3), ((27, 27), 2), ((6, 6), 1)])
def test_window_table_covers_every_patch_once(grid: tuple[int, int], k: int):
    table = window_table(grid, k)
    cells = table[table >= 0].tolist()
    assert sorted(cells) == list(range(grid[0] * grid[1]))
    assert table.shape[0] == math.ceil(grid[0] / k) * math.ceil(grid[1] / k)
    for row in table.tolist():
        assert len({window_of(p, grid, k) for p in row if p >= 0}) == 1


@pytest.mark.parametrize("grid,k", [((4, 4), 2), ((5, 7), 2), ((27, 27), 2)])
@pytest.mark.parametrize("mode", ["resample", "skip"])
def test_window_sampling_never_picks_two_patches_in_one_window(grid, k, mode):
    g = torch.Generator().manual_seed(0)
    n = grid[0] * grid[1]
    table = window_table(grid, k)
    for _ in range(20):
        valid = torch.rand(6, n, generator=g) < 0.6
        u = torch.rand(6, n, generator=g)
        rows, patches = sample_window_patches(valid, u, table, mode)
        assert valid[rows, patches].all(), "only labelled patches are picked"
        keys = [(int(r), window_of(int(p), grid, k)) for r, p in zip(rows, patches, strict=True)]
        assert len(keys) == len(set(keys)), "two patches from one window"
        if mode == "resample":  # every window with a labelled patch gives one
            for b in range(6):
                has = {window_of(p, grid, k) for p in valid[b].nonzero().flatten().tolist()}
                assert {w for r, w in keys if r == b} == has


def test_window_sampling_is_uniform_within_a_window():
    table = window_table((2, 2), 2)
    valid = torch.tensor([[True, True, False, True]]).expand(30000, 4)
    u = torch.rand(30000, 4, generator=torch.Generator().manual_seed(1))
    _, patches = sample_window_patches(valid, u, table)
    freq = torch.bincount(patches, minlength=4).float() / len(patches)
    assert freq[2] == 0
    assert torch.allclose(freq[[0, 1, 3]], torch.full((3,), 1 / 3), atol=0.015)


def test_label_sampling_follows_normalised_scores():
    """Eq. 9: P(label j) = s_j / sum(s) over the labels with s > 0; chi-square at a fixed seed."""
    scores = torch.tensor([[0.5, 0.3, -0.2, 0.15, 0.05, 0.0]])
    ids = torch.tensor([[10, 11, 12, 13, 14, -1]])
    trials = 40000
    u = torch.rand(trials, generator=torch.Generator().manual_seed(123))
    words, ok = sample_labels(ids.expand(trials, -1), scores.expand(trials, -1), u)
    assert ok.all()
    counts = torch.stack([(words == w).sum() for w in (10, 11, 12, 13, 14)]).float()
    assert counts[2] == 0, "negative scores are dropped"
    expected = torch.tensor([0.5, 0.3, 0.15, 0.05]) / 1.0 * trials
    observed = counts[[0, 1, 3, 4]]
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 16.27, f"chi-square {chi2:.2f} (3 dof, p = 0.001)"


def test_label_sampling_edge_cases():
    ids = torch.tensor([[1, 2, 3], [4, 5, 6], [7, -1, 9]])
    scores = torch.tensor([[0.0, 0.0, 1.0], [-1.0, -0.5, 0.0], [0.4, 0.9, 0.6]])
    u = torch.tensor([0.0, 0.5, 0.999999])
    words, ok = sample_labels(ids, scores, u)
    assert words[0] == 3 and ok.tolist() == [True, False, True]
    assert words[2] == 9, "the empty slot (-1) never wins even with a high score"
    words, _ = sample_labels(ids, scores, u, mode="argmax")
    assert words[2] == 9 and words[0] == 3


def test_dedup_leaves_each_label_once_and_picks_at_random():
    words = torch.tensor([5, 3, 5, 7, 3, 5, 9])
    keep = dedup_pairs(words, torch.rand(7, generator=torch.Generator().manual_seed(0)))
    assert sorted(words[keep].tolist()) == [3, 5, 7, 9]
    assert keep.tolist() == sorted(keep.tolist())
    picks = set()
    for seed in range(40):
        keep = dedup_pairs(words, torch.rand(7, generator=torch.Generator().manual_seed(seed)))
        picks.add(int(keep[words[keep] == 5]))
    assert picks == {0, 2, 5}, "every duplicate can be the one kept"


def test_sample_pairs_end_to_end():
    grid, n, top = (4, 6), 24, 3
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 8, (5, n, top), generator=g, dtype=torch.int32)
    scores = torch.rand(5, n, top, generator=g) - 0.3
    uniforms = torch.stack([image_uniforms(0, 0, i, n) for i in range(5)])
    s = SeaSettings()
    pairs = sample_pairs(ids, scores, uniforms, grid, s)
    assert len(pairs) == len(set(pairs.words.tolist())) <= 8
    for r, p, w in zip(pairs.rows, pairs.patches, pairs.words, strict=True):
        j = (ids[r, p] == w).nonzero().flatten()
        assert (scores[r, p, j] > 0).any(), "a sampled word is one of the patch's positive labels"
    # the same images in another batch composition give the same picks before de-duplication
    no_dedup = SeaSettings(dedup=False)
    whole = sample_pairs(ids, scores, uniforms, grid, no_dedup)
    part = sample_pairs(ids[2:4], scores[2:4], uniforms[2:4], grid, no_dedup)
    mask = (whole.rows >= 2) & (whole.rows < 4)
    assert torch.equal(whole.patches[mask], part.patches) and torch.equal(whole.words[mask], part.words)
    # words without tokens are treated as empty slots
    word_ok = torch.ones(8, dtype=torch.bool)
    word_ok[:4] = False
    pairs = sample_pairs(ids, scores, uniforms, grid, s, word_ok=word_ok)
    assert (pairs.words >= 4).all()


def test_image_uniforms_are_keyed():
    a = image_uniforms(0, 0, 3, 16)
    assert torch.equal(a, image_uniforms(0, 0, 3, 16))
    assert not torch.equal(a, image_uniforms(0, 1, 3, 16))
    assert not torch.equal(a, image_uniforms(1, 0, 3, 16))
    assert ((a >= 0) & (a < 1)).all()


def paper_eq11(x: torch.Tensor, t: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 11 written out term by term."""
    n = x.shape[0]

    def phi(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a / a.norm()) @ (b / b.norm())

    total = torch.zeros((), dtype=torch.float64)
    for i in range(n):
        num_v = torch.exp(phi(x[i], t[i]) / tau)
        den_v = sum(torch.exp(phi(x[i], t[j]) / tau) for j in range(n))
        num_t = torch.exp(phi(t[i], x[i]) / tau)
        den_t = sum(torch.exp(phi(t[i], x[j]) / tau) for j in range(n))
        total = total + torch.log(num_v / den_v) + torch.log(num_t / den_t)
    return -total / (2 * n)


def test_loss_equals_eq_11():
    g = torch.Generator().manual_seed(0)
    x, t = (
        torch.randn(7, 12, generator=g, dtype=torch.float64),
        torch.randn(7, 12, generator=g, dtype=torch.float64),
    )
    tau = 0.07
    loss, _ = symmetric_info_nce(x, t, torch.tensor(1 / tau, dtype=torch.float64))
    assert torch.allclose(loss.double(), paper_eq11(x, t, tau), rtol=1e-5)
    # through SeaLoss: pairs pick rows of visual tokens and rows of the label table
    visual = torch.randn(3, 4, 12, generator=g)
    table = torch.randn(20, 12, generator=g)
    pairs = SeaPairs(
        torch.tensor([0, 0, 1, 2, 2]),
        torch.tensor([1, 3, 0, 2, 3]),
        torch.tensor([4, 9, 0, 17, 5]),
        torch.rand(5),
    )
    module = SeaLoss(SeaSettings(), table)
    loss, metrics = module(visual, torch.arange(3), pairs)
    direct = paper_eq11(visual[pairs.rows, pairs.patches].double(), table[pairs.words].double(), 0.07)
    assert torch.allclose(loss.double(), direct, rtol=1e-5)
    assert metrics["sea/pairs"] == 5 and math.isclose(
        float(metrics["sea/logit_scale"]), 1 / 0.07, rel_tol=1e-5
    )
    # four micro-batches per step: the loop's mean over them of pairs_per_step is the step's total
    module.accumulation = 4
    assert module(visual, torch.arange(3), pairs)[1]["sea/pairs_per_step"] == 20


def test_contrastive_batch_is_global_by_default_with_several_processes():
    assert not SeaSettings().gathers(1) and SeaSettings().gathers(8)
    assert not SeaSettings(gather=False).gathers(8) and SeaSettings(gather=True).gathers(2)
    assert SeaSettings.from_config({"gather": None}).gather is None


def test_logit_scale_is_learned_and_clamped():
    module = SeaLoss(SeaSettings(logit_scale_init=50.0, logit_scale_max=60.0), torch.randn(5, 4))
    assert module.logit_scale.requires_grad
    with torch.no_grad():
        module.logit_scale.fill_(math.log(1000.0))
    module.clamp_()
    assert math.isclose(float(module.scale().detach()), 60.0, rel_tol=1e-6)
    assert not SeaLoss(SeaSettings(learn_logit_scale=False), torch.randn(5, 4)).logit_scale.requires_grad


def test_local_shares_sum_to_the_full_loss_and_gradient():
    """The gathered mode's per-process shares, averaged, equal the loss over the whole gathered batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(9, 6, generator=g, dtype=torch.float64)
    scale = torch.tensor(10.0, dtype=torch.float64)
    full, _ = symmetric_info_nce(x, t, scale)
    (gx_full,) = torch.autograd.grad(full, x)
    splits = [(0, 4), (4, 6), (6, 9)]
    shares = [local_info_nce(x[a:b], t[a:b], x, t, a, scale, len(splits)) for a, b in splits]
    mean = sum(shares) / len(splits)
    (gx,) = torch.autograd.grad(mean, x)
    assert torch.allclose(mean.double(), full.double(), rtol=1e-5)
    assert torch.allclose(gx, gx_full, rtol=1e-4, atol=1e-7)


def test_label_embedding_table_is_mean_of_input_embeddings():
    from sea.models.tiny import tiny_tokenizer

    tok = tiny_tokenizer("llama")
    emb = torch.nn.Embedding(len(tok), 8)
    words = ["red", "circle", "hexagon", "purple"]
    table, has = label_embedding_table(emb, tok, words)
    assert has.all() and table.dtype == torch.float32
    for i, w in enumerate(words):
        ids = tok(" " + w, add_special_tokens=False)["input_ids"]  # byte-level BPE: in context == plain
        assert torch.allclose(table[i], emb.weight[ids].mean(0))
    assert not table.requires_grad


def test_gradients_reach_only_the_adapter_and_the_logit_scale(tmp_path):
    from sea.models.tiny import build_tiny_mllm

    mllm = build_tiny_mllm(tmp_path, max_length=64)
    mllm.requires_grad_(True)  # even with everything trainable, L_a reaches only adapter + logit scale
    table, _ = label_embedding_table(
        mllm.llm.get_input_embeddings(), mllm.tokenizer, ["red", "blue", "star", "one"]
    )
    module = SeaLoss(SeaSettings(), table)
    images = torch.randn(2, 3, 32, 32)
    visual = mllm.encode_images(images)
    pairs = SeaPairs(
        torch.tensor([0, 0, 1, 1]), torch.tensor([0, 5, 3, 9]), torch.tensor([0, 1, 2, 3]), torch.rand(4)
    )
    loss, _ = module(visual, torch.arange(2), pairs)
    loss.backward()
    with_grad = {
        n
        for n, p in [*mllm.named_parameters(), *module.named_parameters()]
        if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert with_grad == {n for n, _ in mllm.adapter.named_parameters(prefix="adapter")} | {"logit_scale"}


def test_settings_reject_unknown_and_bad_values():
    with pytest.raises(SeaError, match="unknown align.sea keys"):
        SeaSettings.from_config({"lambda": 1.0})
    with pytest.raises(SeaError, match="sampling"):
        SeaSettings(sampling="softmax")
    assert not SeaSettings(weight=0.0).enabled
