"""Caption agreement on the default shapes world with the CLIP that `backbones` trains (the `make run`
setting): `auto` picks the variant that per-patch ground truth ranks first, and the guard stops labels
made with the wrong sign. Trains the world's CLIP and LM (minutes): the `world` marker, run by `make test-all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from sea.errors import SeaError

pytestmark = [pytest.mark.slow, pytest.mark.world]


def test_auto_agrees_with_ground_truth_and_the_guard_stops_the_wrong_sign(tmp_path: Path) -> None:
    from sea.config import compose
    from sea.labeling.quality import best_variant
    from sea.stages import get_stage

    def cfg(*overrides: str):
        return compose([f"paths.root={tmp_path}", "tracking=none", "label.progress=false", *overrides])

    for stage in ("world", "prepare", "backbones"):
        get_stage(stage).run(cfg())
    metrics = get_stage("label").run(cfg("label.feature=auto", "label.sign=auto"))
    variants = ("maskclip/cosine", "maskclip/neg_cosine", "proj/cosine", "proj/neg_cosine")
    truth = {f"{v}/top1": metrics[f"quality/{v}/top1"] for v in variants}
    margin = {
        v: metrics[f"agreement/{v}/patch_agreement"] - metrics[f"agreement/{v}/patch_chance"]
        for v in variants
    }
    assert max(margin, key=margin.get) == best_variant(truth)
    assert metrics["agreement/matches_truth_best"] == 1.0
    # every cosine variant agrees above chance, every negated one below
    assert all((margin[v] > 0) == v.endswith("/cosine") for v in variants), margin
    with pytest.raises(SeaError, match="no better than chance"):
        get_stage("label").run(cfg("label.sign=neg_cosine", f"paths.labels={tmp_path / 'labels_neg'}"))
