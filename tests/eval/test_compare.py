"""The SEA vs baseline comparison (`sea.eval.compare`) and the `report` stage on hand-made score trees
with known numbers: 3 seeds x 2 arms."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from eval_helpers import report_settings
from omegaconf import OmegaConf
from PIL import Image

from sea.config import CONF_DIR
from sea.errors import SeaError
from sea.eval import compare as C
from sea.eval import render
from sea.eval.render import label_quality_lines, plot_train_curves
from sea.stages import report as R

SETTINGS = report_settings()

SEEDS = [0, 1, 2]
ARMS = ["sea", "baseline"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Headline values per (benchmark, arm), one per seed.
GQA = {"sea": [52.0, 54.0, 56.0], "baseline": [50.0, 50.0, 53.0]}
POPE_SPLITS = {  # per seed: F1 of random / popular / adversarial
    "sea": [(90.0, 88.0, 86.0), (89.0, 87.0, 85.0), (91.0, 89.0, 87.0)],
    "baseline": [(82.0, 80.0, 78.0)] * 3,
}
MME = {"sea": [1500.0, 1600.0, 1700.0], "baseline": [1600.0, 1600.0, 1600.0]}
MMBENCH = {"sea": [10.0, 20.0, 30.0], "baseline": [0.0, 0.0, 0.0]}  # baseline 0: gain undefined
FOO = {"sea": [22.0, 22.0, 22.0], "baseline": [20.0, 20.0, 20.0]}  # unknown benchmark
DIAG = {"sea": [10.0, 20.0, 30.0], "baseline": [5.0, 5.0, 5.0]}


def arm_scores(arm: str, i: int) -> dict:
    splits = dict(zip(("random", "popular", "adversarial"), POPE_SPLITS[arm][i], strict=True))
    return {
        "gqa": {"benchmark": "gqa", "metrics": {"accuracy": GQA[arm][i], "semantic/attr": 1.0}},
        "pope": {
            "benchmark": "pope",
            # metrics.f1 deliberately off: the headline is the mean of the split F1s
            "metrics": {"accuracy": 70.0, "f1": -1.0},
            "splits": {s: {"accuracy": 70.0, "f1": f} for s, f in splits.items()},
        },
        "mme": {"benchmark": "mme", "metrics": {"cognition": 300.0, "perception": MME[arm][i]}},
        "mmbench": {
            "benchmark": "mmbench",
            "metrics": {"accuracy": MMBENCH[arm][i], "vanilla_accuracy": 40.0},
        },
        "foo": {"metrics": {"zeta": FOO[arm][i], "alpha": 99.0}},
        "diagnostics": {"metrics": {"nearest_word/object_accuracy": DIAG[arm][i], "tacs": 0.5}},
    }


def make_tree(root: Path, seeds=SEEDS, arms=ARMS) -> dict[str, Path]:
    paths = {k: root / k for k in ("evaluate", "align", "metrics", "report")}
    for i, s in enumerate(seeds):
        for arm in arms:
            d = paths["evaluate"] / f"seed{s}" / arm
            d.mkdir(parents=True)
            (d / "scores.json").write_text(json.dumps(arm_scores(arm, i)))
            rows = []
            for step in range(1, 6):
                row = {
                    "step": step,
                    "loss": 5.0 - step * 0.5 + i,
                    "loss_lm": 4.0 - step * 0.4,
                    "lr": 1e-3 * step,
                }
                if arm == "sea":
                    row |= {"loss_sea": 2.0 - step * 0.1, "sea/logit_scale": 14.3}
                rows.append(row)
            a = paths["align"] / f"seed{s}" / arm
            a.mkdir(parents=True)
            (a / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def write_label_json(paths: dict[str, Path]) -> None:
    paths["metrics"].mkdir(parents=True, exist_ok=True)
    label = {
        "labelled_patch_fraction": 0.25,
        "labels_per_patch": 2.5,
        "quality/labels/top1": 0.61,
        "quality/labels/label_precision": 0.42,
        "quality/configured_is_best": 1.0,
        "quality/images": 16.0,
        "quality/maskclip/cosine/top1": 0.5,
    }
    (paths["metrics"] / "label.json").write_text(json.dumps(label))


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    return make_tree(tmp_path)


def gain(a: float, b: float) -> float:
    return (a - b) / b * 100


# ---- the numbers -----------------------------------------------------------------------------------


def test_means_stds_and_gains_are_exact(tree):
    comp = C.compare(R.load_scores(tree["evaluate"], SEEDS, ARMS), ARMS, SEEDS, settings=SETTINGS)
    rows = comp["benchmarks"]
    assert list(rows) == ["gqa", "mmbench", "pope", "mme", "foo"]  # paper order, unknown after

    gqa = rows["gqa"]
    assert gqa["metric"] == "accuracy"
    assert gqa["values"]["sea"] == {"0": 52.0, "1": 54.0, "2": 56.0}
    assert gqa["mean"] == {"sea": 54.0, "baseline": 51.0}
    assert gqa["std"]["sea"] == pytest.approx(2.0)
    assert gqa["std"]["baseline"] == pytest.approx(math.sqrt(3.0))  # sample std (n - 1)
    assert gqa["delta"]["sea"] == pytest.approx(3.0)
    assert gqa["gain"]["sea"] == pytest.approx(3 / 51 * 100)

    pope = rows["pope"]
    assert pope["metric"] == "f1"
    assert pope["values"]["sea"] == {
        "0": pytest.approx(88.0),
        "1": pytest.approx(87.0),
        "2": pytest.approx(89.0),
    }
    assert pope["mean"]["sea"] == pytest.approx(88.0)
    assert pope["std"]["sea"] == pytest.approx(1.0)
    assert pope["std"]["baseline"] == pytest.approx(0.0)
    assert pope["gain"]["sea"] == pytest.approx(10.0)

    assert rows["mme"]["metric"] == "perception"
    assert rows["mme"]["std"]["sea"] == pytest.approx(100.0)
    assert rows["mme"]["gain"]["sea"] == pytest.approx(0.0)

    assert rows["mmbench"]["mean"] == {"sea": 20.0, "baseline": 0.0}
    assert rows["mmbench"]["gain"]["sea"] is None

    foo = rows["foo"]
    assert (foo["metric"], foo["description"]) == ("zeta", "zeta (first metric)")
    assert foo["gain"]["sea"] == pytest.approx(10.0)

    expected = (3 / 51 * 100 + 10.0 + 0.0 + 10.0) / 4  # mmbench left out
    avg = comp["average"]["sea"]
    assert avg["gain"] == pytest.approx(expected)
    assert avg["benchmarks"] == ["gqa", "pope", "mme", "foo"]
    assert avg["left_out"] == {"mmbench": "gain undefined (baseline mean 0 or missing)"}
    seed0 = (gain(52, 50) + gain(88, 80) + gain(1500, 1600) + gain(22, 20)) / 4
    assert avg["per_seed"]["0"] == pytest.approx(seed0)
    # no outcomes.json here: no bootstrap interval, but t intervals over the 3 seeds
    assert gqa["ci"] == {"sea": None, "baseline": None} and gqa["delta_ci"]["sea"] is None
    t = 4.302652729911275  # t(0.975, 2)
    assert gqa["seed_ci"]["sea"] == pytest.approx([54 - t * 2 / math.sqrt(3), 54 + t * 2 / math.sqrt(3)])
    assert gqa["delta_seed_ci"]["sea"] == pytest.approx([3 - t * 1 / math.sqrt(3), 3 + t * 1 / math.sqrt(3)])
    assert avg["ci"] is None and avg["seed_ci"] is not None
    assert not any(row["flags"][a] for row in rows.values() for a in ARMS)  # no counts, chance, yes-ratio

    diag = comp["diagnostics"]["nearest_word/object_accuracy"]
    assert diag["mean"] == {"sea": 20.0, "baseline": 5.0}
    assert diag["std"]["sea"] == pytest.approx(10.0)
    assert comp["metrics"]["pope_random/f1"]["mean"]["baseline"] == pytest.approx(82.0)


def test_flat_summary_names_and_values(tree):
    comp = C.compare(R.load_scores(tree["evaluate"], SEEDS, ARMS), ARMS, SEEDS, settings=SETTINGS)
    flat = C.flat_summary(comp)
    assert flat["gain/gqa"] == pytest.approx(3 / 51 * 100)
    assert flat["gain/average"] == pytest.approx((3 / 51 * 100 + 20.0) / 4)
    assert "gain/mmbench" not in flat  # undefined gain is left out
    assert flat["sea/pope/mean"] == pytest.approx(88.0)
    assert flat["baseline/gqa/std"] == pytest.approx(math.sqrt(3.0))
    assert flat["sea/diagnostics/nearest_word/object_accuracy/mean"] == pytest.approx(20.0)
    assert flat["seeds"] == 3.0
    assert all(math.isfinite(v) for v in flat.values())


def test_one_seed_has_no_std(tmp_path):
    paths = make_tree(tmp_path, seeds=[7])
    comp = C.compare(R.load_scores(paths["evaluate"], [7], ARMS), ARMS, [7], settings=SETTINGS)
    assert comp["benchmarks"]["gqa"]["std"] == {"sea": None, "baseline": None}
    assert comp["benchmarks"]["gqa"]["gain"]["sea"] == pytest.approx(gain(52, 50))
    table = render.headline_table(comp)
    assert "| GQA | accuracy | - | 52.00 | 50.00 | +2.00 | +4.00 |" in table
    assert "baseline/gqa/std" not in C.flat_summary(comp)


def test_several_compared_arms_get_their_own_gain_names(tmp_path):
    paths = make_tree(tmp_path, arms=["sea", "baseline"])
    # a third arm: a copy of sea's scores
    for s in SEEDS:
        src = paths["evaluate"] / f"seed{s}" / "sea"
        dst = paths["evaluate"] / f"seed{s}" / "sea2"
        dst.mkdir()
        (dst / "scores.json").write_text((src / "scores.json").read_text())
    arms = ["sea", "sea2", "baseline"]
    flat = C.flat_summary(
        C.compare(R.load_scores(paths["evaluate"], SEEDS, arms), arms, SEEDS, settings=SETTINGS)
    )
    assert flat["gain/sea/gqa"] == pytest.approx(flat["gain/sea2/gqa"]) == pytest.approx(3 / 51 * 100)
    assert "gain/sea/average" in flat and "gain/gqa" not in flat


def test_without_baseline_only_the_per_arm_table(tmp_path):
    paths = make_tree(tmp_path)
    arms = ["sea"]
    comp = C.compare(R.load_scores(paths["evaluate"], SEEDS, arms), arms, SEEDS, settings=SETTINGS)
    assert comp["baseline"] is None and "average" not in comp
    assert "gain" not in comp["benchmarks"]["gqa"]
    assert not [k for k in C.flat_summary(comp) if k.startswith("gain/")]
    assert "average relative gain" not in render.headline_table(comp)


def test_missing_scores_file_is_named(tree):
    gone = tree["evaluate"] / "seed1" / "baseline" / "scores.json"
    gone.unlink()
    with pytest.raises(SeaError, match="1 scores file") as err:
        R.load_scores(tree["evaluate"], SEEDS, ARMS)
    assert str(gone) in str(err.value)


# ---- files and the stage (one run for the module: plotting is the slow part) -----------------------


def stage_cfg(paths: dict[str, Path], seeds=SEEDS, arms=ARMS):
    return OmegaConf.create(
        {
            "arms": list(arms),
            "seeds": list(seeds),
            "paths": {k: str(v) for k, v in paths.items()},
            "tracking": {"enabled": False},
            "report": yaml.safe_load((CONF_DIR / "report" / "default.yaml").read_text(encoding="utf-8")),
        }
    )


class Recorder:
    def __init__(self) -> None:
        self.artifacts: list[tuple[Path, str | None]] = []

    def log_artifact(self, path, artifact_path=None) -> None:
        assert Path(path).is_file()
        self.artifacts.append((Path(path), artifact_path))


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory):
    """The `report` stage run on the 3-seed tree with a label.json: (cfg, paths, metrics, recorder)."""
    from sea.stages.report import STAGE

    paths = make_tree(tmp_path_factory.mktemp("report"))
    write_label_json(paths)
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sea.tracking.current", lambda: recorder)
        cfg = stage_cfg(paths)
        metrics = STAGE.run(cfg)
    return cfg, paths, metrics, recorder


def test_report_files(reported):
    _, paths, _, _ = reported
    out = paths["report"]
    for name in (render.BENCHMARKS_PNG, render.ALIGN_PNG):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(out / name) as im:
            im.verify()
            assert im.size[0] > 300 and im.size[1] > 200
    comp = C.compare(R.load_scores(paths["evaluate"], SEEDS, ARMS), ARMS, SEEDS, settings=SETTINGS)
    saved = json.loads((out / R.COMPARISON_JSON).read_text())
    assert saved["average"]["sea"]["gain"] == pytest.approx(comp["average"]["sea"]["gain"])
    assert list(saved["benchmarks"]) == list(comp["benchmarks"])
    assert saved["label_quality"]["quality/labels/top1"] == 0.61

    md = (out / R.REPORT_MD).read_text()
    assert "| benchmark | metric | chance | sea | baseline | Δ sea | gain sea (%) |" in md
    assert "| GQA | accuracy | - | 54.00 ± 2.00 | 51.00 ± 1.73 | +3.00 | +5.88 |" in md
    assert "| MMBench | circular accuracy | - | 20.00 ± 10.00 | 0.00 ± 0.00 | +20.00 | n/a |" in md
    average = f"average relative gain over GQA, POPE, MME, foo: +{(3 / 51 * 100 + 20) / 4:.2f} %; 95 % "
    assert average + "interval over 3 seeds (t) [+1.66, +11.28]. Verdict: sea is higher than baseline" in md
    assert "Left out of the average: MMBench (gain undefined (baseline mean 0 or missing))." in md
    assert "**" not in md
    assert "## Across seeds (95 % Student t interval, n - 1 df)" in md
    assert "nearest_word/object_accuracy | 20.000 ± 10.000 | 5.000 ± 0.000" in md
    assert "stored labels, top1" in md and "0.610" in md and "0.420" in md
    assert "| GQA | 52.00 | 54.00 | 56.00 | 50.00 | 50.00 | 53.00 | +4.00 | +8.00 | +5.66 |" in md
    assert render.read_report_table(out).startswith(render.headline_table(comp))
    assert render.read_report_table(out).split("\n\n")[1] in md


def test_report_stage_metrics_and_artifacts(reported):
    from sea.stages.report import STAGE

    cfg, paths, metrics, recorder = reported
    assert (paths["report"] / "_SUCCESS.json").is_file()
    assert metrics["gain/gqa"] == pytest.approx(3 / 51 * 100)
    assert metrics["gain/average"] == pytest.approx((3 / 51 * 100 + 20.0) / 4)
    assert (
        metrics["gain/average/seed_ci_low"] < metrics["gain/average"] < metrics["gain/average/seed_ci_high"]
    )
    assert "gain/gqa/ci_low" not in metrics  # no outcomes.json: no bootstrap
    assert metrics["sea/mme/mean"] == pytest.approx(1600.0)
    assert sorted(p.name for p, _ in recorder.artifacts) == sorted(
        ["report.md", "comparison.json", "benchmarks.png", "align_curves.png"]
    )
    assert {a for _, a in recorder.artifacts} == {"report"}
    assert STAGE.run(cfg) == metrics  # finished with the same config: the stored metrics


def test_report_stage_missing_seed_names_the_file(tree):
    from sea.stages.report import STAGE

    cfg = stage_cfg(tree, seeds=[0, 1, 2, 3])
    with pytest.raises(SeaError) as err:
        STAGE.run(cfg)
    msg = str(err.value)
    assert str(tree["evaluate"] / "seed3" / "sea" / "scores.json") in msg
    assert str(tree["evaluate"] / "seed3" / "baseline" / "scores.json") in msg
    assert not (tree["report"] / "report.md").exists()


def test_label_quality_lines_without_ground_truth_or_file():
    assert "absent" in label_quality_lines(None)[0]
    lines = label_quality_lines({"labelled_patch_fraction": 0.5})
    assert any("not measured" in x for x in lines)


def test_train_curves_tolerate_missing_logs(tree, tmp_path):
    (tree["align"] / "seed2" / "sea" / "train_log.jsonl").unlink()
    logs = R.load_train_logs(tree["align"], SEEDS, ARMS)
    assert sorted(logs["sea"]) == [0, 1] and sorted(logs["baseline"]) == [0, 1, 2]
    del logs["baseline"]  # a panel with nothing logged says so instead of failing
    path = plot_train_curves(
        logs, ARMS, tmp_path / "c.png", keys=[("loss_sea", "SEA loss"), ("nope", "nope")]
    )
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_read_report_table_needs_a_report(tmp_path):
    with pytest.raises(SeaError, match="comparison.json"):
        render.read_report_table(tmp_path)


def test_label_quality_lines_report_caption_agreement_without_ground_truth():
    keys = ("patch_agreement", "patch_chance", "image_agreement", "image_chance", "top1_entropy_bits")
    label = {f"agreement/labels/{k}": v for k, v in zip(keys, (0.61, 0.3, 0.9, 0.6, 3.2), strict=True)}
    label |= {"agreement/labels/top10_share": 0.8, "agreement/labels/top1_max_share": 0.2}
    label |= {"agreement/labels/distinctness": 0.7, "agreement/images": 200.0}
    text = "\n".join(label_quality_lines(label))
    assert "0.610 vs chance 0.300" in text and "3.20 bits" in text and "200 pretraining images" in text
    assert "label quality not measured" in text  # no ground truth: the accuracy part still says so
