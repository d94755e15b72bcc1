"""The report's statistics on answer files written against the tiny world's benchmarks and scored by the
real scorers: paired bootstrap intervals (units as the headline needs them), degenerate-answer flags, the
average relative gain over unflagged benchmarks, and the report's wording."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import answer, report_settings, write_jsonl

from sea.config import select
from sea.errors import SeaError
from sea.eval import compare as C
from sea.eval import render, stats
from sea.eval.batch_generate import benchmark_specs, score_benchmark
from sea.eval.outcomes import point_headline
from sea.eval.render import average_lines
from sea.eval.scorers.mmbench import read_mmbench_tsv, row_options
from sea.stages import report as R
from sea.world.language import SHORT_SUFFIX, YES_NO_SUFFIX

BENCHES = ("gqa", "pope", "mme", "mmbench")
SETTINGS = report_settings(bootstrap={"resamples": 500, "seed": 0})

# ---- answer files against the world's ground truth -------------------------------------------------


@pytest.fixture(scope="module")
def truth(world_cfg) -> dict[str, list[dict]]:
    """Per benchmark, per question in answer-file order: `qid`, `prompt`, `truth` (the right answer text),
    `wrong` (a wrong one), `half` (MMBench: the original question, so that HALF gets every copy of half
    the questions right)."""
    sets = select(world_cfg, "data.eval_sets")
    read = lambda p: [json.loads(x) for x in Path(p).read_text().splitlines()]  # noqa: E731
    gqa_gt = json.loads(Path(sets["gqa"]["annotations"]).read_text())
    out: dict[str, list[dict]] = {
        "gqa": [
            {
                "qid": q["question_id"],
                "prompt": q["text"],
                "truth": gqa_gt[q["question_id"]]["answer"],
                "wrong": "zzz",
            }
            for q in read(sets["gqa"]["questions"])
        ]
    }
    pope_qs = read(sets["pope"]["questions"])
    labels = {}
    for cat in dict.fromkeys(q["category"] for q in pope_qs):
        cat_qs = [q for q in pope_qs if q["category"] == cat]
        rows = read(Path(sets["pope"]["annotations"]) / f"coco_pope_{cat}.json")
        labels |= {q["question_id"]: r["label"] for q, r in zip(cat_qs, rows, strict=True)}
    flip = {"yes": "No", "no": "Yes"}
    out["pope"] = [
        {"qid": q["question_id"], "prompt": q["text"], "truth": labels[q["question_id"]].title(),
         "wrong": flip[labels[q["question_id"]]], "split": q["category"]}
        for q in pope_qs
    ]  # fmt: skip
    mme_gt = {}
    for f in Path(sets["mme"]["annotations"]).glob("*.txt"):
        for line in f.read_text().splitlines():
            image, question, ans = line.split("\t")
            mme_gt[(f.stem, image, question)] = ans
    out["mme"] = [
        {"qid": q["question_id"], "prompt": q["text"],
         "truth": (a := mme_gt[(q["category"], q["image"], as_in_mme(q["text"]))]), "wrong": flip[a.lower()]}
        for q in read(sets["mme"]["questions"])
    ]  # fmt: skip
    rows = read_mmbench_tsv(sets["mmbench"]["questions"])
    out["mmbench"] = []
    for r in rows:
        letters = "ABCD"[: len(row_options(r))]
        wrong = letters[(letters.index(r["answer"]) + 1) % len(letters)]
        out["mmbench"].append(
            {
                "qid": r["index"],
                "prompt": "",
                "truth": r["answer"],
                "wrong": wrong,
                "half": r["index"] % 10**6,
            }
        )
    return out


def as_in_mme(prompt: str) -> str:
    """The world asks MME with LLaVA's short-answer suffix; its ground truth keeps MME's own phrasing."""
    return prompt.removesuffix(SHORT_SUFFIX) + YES_NO_SUFFIX


Policy = Callable[[int, dict], str]
TRUE: Policy = lambda i, q: q["truth"]  # noqa: E731
HALF: Policy = lambda i, q: q["truth"] if q.get("half", i) % 2 == 0 else q["wrong"]  # noqa: E731
MOST: Policy = lambda i, q: q["truth"] if q.get("half", i) % 8 else q["wrong"]  # noqa: E731
YES: Policy = lambda i, q: "Yes"  # noqa: E731
LETTER_A: Policy = lambda i, q: "A"  # noqa: E731


def score_run(world_cfg, truth, folder: Path, policies: dict[str, Policy]) -> dict:
    """Answer every benchmark by its policy (default HALF), score it as `evaluate` does and write
    `scores.json` and `outcomes.json` into `folder`; returns the scores."""
    specs = {
        s.name: s for s in benchmark_specs(select(world_cfg, "eval"), select(world_cfg, "data.eval_sets"))
    }
    scores, outcomes = {}, {}
    for b in BENCHES:
        policy = policies.get(b, HALF)
        rows = [answer(q["qid"], policy(i, q), prompt=q["prompt"]) for i, q in enumerate(truth[b])]
        path = write_jsonl(folder / "answers" / f"{b}.jsonl", rows)
        scores[b] = score_benchmark(specs[b], path)
        outcomes[b] = scores[b].pop("outcomes")
    (folder / "scores.json").write_text(json.dumps(scores))
    (folder / "outcomes.json").write_text(json.dumps(outcomes))
    return scores


def make_runs(world_cfg, truth, root: Path, arms: dict[str, dict[str, Policy]], seeds=(0,)) -> Path:
    for s in seeds:
        for arm, policies in arms.items():
            score_run(world_cfg, truth, root / f"seed{s}" / arm, policies)
    return root


def comparison(root: Path, arms, seeds=(0,), settings=SETTINGS) -> dict:
    seeds = list(seeds)
    return C.compare(
        R.load_scores(root, seeds, arms),
        arms,
        seeds,
        outcomes=R.load_outcomes(root, seeds, arms),
        settings=settings,
    )


# ---- scorers: outcomes and chance ------------------------------------------------------------------


def test_outcomes_reproduce_every_scorer_headline_and_units(world_cfg, truth, tmp_path):
    scores = score_run(world_cfg, truth, tmp_path, {})
    outcomes = json.loads((tmp_path / "outcomes.json").read_text())
    for b in BENCHES:
        assert point_headline(outcomes[b]) == pytest.approx(C.headline(b, scores[b])[2], abs=1e-9), b
    assert sorted(outcomes["pope"]["strata"]) == ["adversarial", "popular", "random"]
    mme = outcomes["mme"]
    assert sum(len(s["ids"]) for s in mme["strata"].values()) == len(truth["mme"]) // 2  # one unit per image
    assert mme["strata"]["color"]["ids"][0] == "color/eval_000000"
    originals = sorted({q["half"] for q in truth["mmbench"]})
    assert outcomes["mmbench"]["strata"]["all"]["ids"] == [str(i) for i in originals]
    assert "outcomes" not in json.loads((tmp_path / "scores.json").read_text())["gqa"]


def test_chance_is_the_score_of_the_best_image_blind_answerer(world_cfg, truth, tmp_path):
    """Always "yes" scores POPE's chance exactly; the most common GQA answer scores GQA's; MME's chance
    is at least the coin flip (75 per subtask)."""
    from collections import Counter

    common = Counter(q["truth"] for q in truth["gqa"]).most_common(1)[0][0]
    scores = score_run(world_cfg, truth, tmp_path, {"pope": YES, "gqa": lambda i, q: common, "mme": YES})
    assert scores["pope"]["metrics"]["f1"] == pytest.approx(scores["pope"]["chance"]["metrics"]["f1"])
    assert scores["gqa"]["metrics"]["accuracy"] == pytest.approx(
        scores["gqa"]["chance"]["metrics"]["accuracy"]
    )
    assert scores["mme"]["chance"]["metrics"]["perception"] >= 75 * 4 > scores["mme"]["metrics"]["perception"]
    assert 0 < scores["mmbench"]["chance"]["metrics"]["accuracy"] < 1  # random letter per copy: (1/4)^4


# ---- flags -----------------------------------------------------------------------------------------


def kinds(flags: list[dict]) -> set[str]:
    return {f["kind"] for f in flags}


def test_flags_fire_on_an_always_yes_pope_file_and_not_on_a_balanced_one(world_cfg, truth, tmp_path):
    yes = score_run(world_cfg, truth, tmp_path / "yes", {"pope": YES})["pope"]
    flags = stats.answer_flags(yes, "f1", C.headline("pope", yes)[2], SETTINGS)
    assert kinds(flags) == {"yes_ratio", "chance"}
    assert "random 100 %" in next(f["detail"] for f in flags if f["kind"] == "yes_ratio")

    good = score_run(world_cfg, truth, tmp_path / "good", {"pope": TRUE})["pope"]
    assert 35 < good["metrics"]["yes_ratio"] < 65  # balanced
    assert stats.answer_flags(good, "f1", C.headline("pope", good)[2], SETTINGS) == []

    ones = score_run(world_cfg, truth, tmp_path / "ones", {"pope": lambda i, q: "1"})["pope"]
    assert ones["counts"]["unparsed"] == len(truth["pope"])  # parsed as "yes", counted as unparsed
    assert "unparsed" in kinds(stats.answer_flags(ones, "f1", C.headline("pope", ones)[2], SETTINGS))


def test_flag_thresholds_come_from_the_config(world_cfg, truth, tmp_path):
    yes = score_run(world_cfg, truth, tmp_path, {"pope": YES})["pope"]
    flags = {"yes_ratio_low": 10, "unparsed": 10}
    lax = report_settings(flags={**flags, "yes_ratio_high": 100, "chance_margin": -1})
    assert stats.answer_flags(yes, "f1", C.headline("pope", yes)[2], lax) == []
    with pytest.raises(SeaError, match="yes_ratio_low < yes_ratio_high"):
        report_settings(flags={**flags, "yes_ratio_low": 95, "yes_ratio_high": 90, "chance_margin": 0})
    with pytest.raises(SeaError, match="report.bootstrap.resamples"):
        report_settings(bootstrap={"resamples": 0, "seed": 0})
    with pytest.raises(SeaError, match=r"unknown report.flags keys \['yes_ratio_hi'\]"):
        report_settings(flags={**flags, "yes_ratio_hi": 100, "yes_ratio_high": 90, "chance_margin": 0})


# ---- intervals -------------------------------------------------------------------------------------


def test_identical_answer_files_give_exactly_zero_intervals(world_cfg, truth, tmp_path):
    runs = {"sea": {"mmbench": MOST}, "baseline": {"mmbench": MOST}}  # MMBench 87.5: no resample at 0
    root = make_runs(world_cfg, truth, tmp_path, runs)
    comp = comparison(root, ["sea", "baseline"])
    for b, row in comp["benchmarks"].items():
        assert row["delta_ci"]["sea"] == [0.0, 0.0], b
        assert row["gain_ci"]["sea"] == [0.0, 0.0], b
        assert row["ci"]["sea"] == row["ci"]["baseline"], b
    assert comp["benchmarks"]["gqa"]["ci"]["sea"][0] < 50 < comp["benchmarks"]["gqa"]["ci"]["sea"][1]
    avg = comp["average"]["sea"]
    assert avg["ci"] == [0.0, 0.0] and avg["verdict"] == "no significant difference at this scale"
    assert not avg["significant"]


def test_a_known_difference_gives_an_interval_that_excludes_zero(world_cfg, truth, tmp_path):
    root = make_runs(world_cfg, truth, tmp_path, {"sea": dict.fromkeys(BENCHES, TRUE), "baseline": {}})
    comp = comparison(root, ["sea", "baseline"])
    gqa = comp["benchmarks"]["gqa"]
    assert gqa["mean"] == {"sea": 100.0, "baseline": 50.0}
    low, high = gqa["delta_ci"]["sea"]
    assert 0 < low <= 50.0 <= high
    avg = comp["average"]["sea"]
    assert avg["ci"][0] > 0 and avg["significant"]
    # one seed: the verdict says that seed-to-seed variation is not in it
    assert avg["verdict"].startswith("sea is higher than baseline over questions, but no interval over seeds")
    # deterministic, and the draws depend on the bootstrap seed
    assert comparison(root, ["sea", "baseline"])["average"]["sea"]["ci"] == avg["ci"]
    oc = R.load_outcomes(root, [0], ["sea", "baseline"])[0]
    runs = {arm: oc[arm]["gqa"] for arm in oc}
    again, other = stats.paired_bootstrap("gqa", runs, 50, 0), stats.paired_bootstrap("gqa", runs, 50, 1)
    assert np.array_equal(again["baseline"], stats.paired_bootstrap("gqa", runs, 50, 0)["baseline"])
    assert not np.array_equal(again["baseline"], other["baseline"])


def test_mme_resamples_image_pairs_within_subtasks(world_cfg, truth, tmp_path):
    """Both questions of an image right or both wrong: a pair resample keeps acc = acc+, so every
    perception value is 25 × (pairs right) (4 subtasks of 8 images); a question resample would not."""
    both: Policy = lambda i, q: q["truth"] if (i // 2) % 2 == 0 else q["wrong"]  # noqa: E731
    score_run(world_cfg, truth, tmp_path, {"mme": both})
    oc = json.loads((tmp_path / "outcomes.json").read_text())["mme"]
    assert {len(s["ids"]) for s in oc["strata"].values()} == {8}
    samples = stats.paired_bootstrap("mme", {"x": oc}, 500, 0)["x"]
    assert np.allclose(samples / 25, np.round(samples / 25)) and len(set(samples.tolist())) > 3


def test_mmbench_resamples_questions_with_all_their_circular_copies(world_cfg, truth, tmp_path):
    """Right on three of each question's four copies: circular accuracy 0, and 0 in every resample."""
    three: Policy = lambda i, q: q["wrong"] if q["qid"] >= 3 * 10**6 else q["truth"]  # noqa: E731
    scores = score_run(world_cfg, truth, tmp_path, {"mmbench": three})
    assert scores["mmbench"]["metrics"] == {"accuracy": 0.0, "vanilla_accuracy": 100.0}
    oc = json.loads((tmp_path / "outcomes.json").read_text())["mmbench"]
    assert np.all(stats.paired_bootstrap("mmbench", {"x": oc}, 200, 0)["x"] == 0)


def test_strata_keep_their_size():
    """POPE-like strata: one all right, one all wrong: the mean is 50 in every stratified resample."""
    oc = {"aggregate": "mean", "unit": "question", "columns": ["correct"],
          "strata": {"a": {"ids": list("abcd"), "values": [[1]] * 4},
                     "b": {"ids": list("efgh"), "values": [[0]] * 4}}}  # fmt: skip
    assert np.all(stats.paired_bootstrap("x", {"r": oc}, 300, 0)["r"] == 50.0)


def test_runs_that_answered_other_questions_cannot_be_paired(world_cfg, truth, tmp_path):
    root = make_runs(world_cfg, truth, tmp_path, {"sea": {}, "baseline": {}})
    path = root / "seed0" / "baseline" / "outcomes.json"
    oc = json.loads(path.read_text())
    oc["gqa"]["strata"]["all"]["ids"][0] = "999"
    path.write_text(json.dumps(oc))
    with pytest.raises(SeaError, match="answered different units"):
        comparison(root, ["sea", "baseline"])
    oc["gqa"]["strata"]["all"]["ids"][0] = "1"
    oc["gqa"]["strata"]["all"]["values"] = [[1]] * len(oc["gqa"]["strata"]["all"]["values"])
    path.write_text(json.dumps(oc))
    with pytest.raises(SeaError, match="outcomes.json gives 100.0 but scores.json 50.0"):
        comparison(root, ["sea", "baseline"])


def test_seed_intervals_are_student_t_with_three_seeds():
    low, high = stats.t_interval([1.0, 2.0, 3.0], 0.95)
    assert (low + high) / 2 == pytest.approx(2.0)
    assert (high - low) / 2 == pytest.approx(4.302652729911275 * 1.0 / 3**0.5)  # t(0.975, 2) · s / √n
    assert stats.t_interval([1.0, 2.0], 0.95) is None


# ---- the average and the report --------------------------------------------------------------------


def test_average_leaves_out_flagged_benchmarks_and_names_them(world_cfg, truth, tmp_path):
    arms = {
        "sea": {"gqa": TRUE, "pope": YES, "mme": TRUE, "mmbench": LETTER_A},
        "baseline": {"mme": TRUE, "pope": TRUE, "mmbench": LETTER_A},
    }
    root = make_runs(world_cfg, truth, tmp_path / "evaluate", arms, seeds=(0, 1, 2))
    comp = comparison(root, ["sea", "baseline"], seeds=(0, 1, 2))
    avg = comp["average"]["sea"]
    assert avg["benchmarks"] == ["gqa", "mme"]
    assert avg["left_out"]["pope"] == "sea: yes 100 %, ≤ chance"
    assert avg["left_out"]["mmbench"] == "sea: ≤ chance; baseline: ≤ chance"  # circular accuracy 0
    rows = comp["benchmarks"]
    assert avg["gain"] == pytest.approx((rows["gqa"]["gain"]["sea"] + rows["mme"]["gain"]["sea"]) / 2)
    assert avg["seed_ci"] == [pytest.approx(avg["gain"])] * 2  # identical seeds: zero spread
    assert avg["paper_basis"]["missing"] == [
        "VQAv2",
        "TextVQA",
        "ScienceQA-IMG",
        "MMBench",
        "POPE",
        "VizWiz",
        "MM-Vet",
    ]
    assert avg["paper_basis"]["extra"] == ["MME"]

    text = "\n".join(average_lines(comp))
    assert "average relative gain over GQA, MME: +" in text
    assert (
        "Left out of the average: MMBench (sea: ≤ chance; baseline: ≤ chance); "
        "POPE (sea: yes 100 %, ≤ chance)." in text
    )
    assert "Not the SEA paper's eight benchmarks" in text and "+7.61 %" in text
    table = render.headline_table(comp)
    assert "⚠ yes 100 %, ≤ chance" in table
    assert "average relative gain, sea (GQA, MME)" in table
    assert "**" not in table


def test_report_stage_writes_intervals_flags_and_verdict(world_cfg, truth, tmp_path):
    from omegaconf import OmegaConf

    from sea.stages.report import STAGE

    paths = {k: tmp_path / k for k in ("evaluate", "align", "metrics", "report")}
    runs = {"sea": {"pope": YES, "mmbench": MOST}, "baseline": {"pope": TRUE, "mmbench": MOST}}
    make_runs(world_cfg, truth, paths["evaluate"], runs)
    cfg = OmegaConf.create(
        {"arms": ["sea", "baseline"], "seeds": [0], "paths": {k: str(v) for k, v in paths.items()},
         "tracking": {"enabled": False},
         "report": {**dataclasses.asdict(SETTINGS), "bootstrap": {"resamples": 300, "seed": 0}}}
    )  # fmt: skip
    metrics = STAGE.run(cfg)
    md = (paths["report"] / R.REPORT_MD).read_text()
    assert "over GQA, MMBench: +0.00 %; 95 % interval over questions (paired bootstrap) [+0.00, +0.00]." in md
    assert "Verdict: no significant difference at this scale." in md
    assert "MME (sea: ≤ chance; baseline: ≤ chance)" in md  # a coin flip scores 75 per subtask
    assert "| benchmark | metric | chance | sea | baseline | Δ sea | gain sea (%) |" in md
    assert "POPE, sea, seed 0: yes-ratio outside [10, 90] %" in md
    assert "**" not in md
    saved = json.loads((paths["report"] / R.COMPARISON_JSON).read_text())
    assert saved["benchmarks"]["gqa"]["delta_ci"]["sea"] == [0.0, 0.0]
    assert saved["statistics"]["resamples"] == 300
    assert metrics["gain/gqa/ci_low"] == metrics["gain/gqa/ci_high"] == 0.0
    assert metrics["sea/pope/flags"] == 2.0 and metrics["baseline/pope/flags"] == 0.0
    assert metrics["gain/average/benchmarks"] == 2.0
    assert render.read_report_table(paths["report"]).startswith(render.headline_table(saved))
    print(md)  # noqa: T201  (the sample in the helper's report: pytest -s)


def test_nothing_is_averaged_when_every_benchmark_is_degenerate(world_cfg, truth, tmp_path):
    """The issue's run: both arms answer "1" to everything; no gain is claimed."""
    ones = dict.fromkeys(BENCHES, lambda i, q: "1")
    root = make_runs(world_cfg, truth, tmp_path, {"sea": ones, "baseline": ones})
    comp = comparison(root, ["sea", "baseline"])
    avg = comp["average"]["sea"]
    assert avg["benchmarks"] == [] and avg["gain"] is None and not avg["significant"]
    assert set(avg["left_out"]) == set(BENCHES)
    assert "- sea vs baseline: no benchmark left to average" in "\n".join(average_lines(comp))
    assert C.flat_summary(comp)["gain/average/benchmarks"] == 0.0


def test_verdict_names_the_interval_that_contains_zero_when_they_disagree():
    from sea.eval.stats import verdict

    assert verdict("sea", "baseline", [[1.0, 3.0], [0.5, 2.0]]) == (
        True,
        "sea is higher than baseline (every interval excludes 0)",
    )
    assert verdict("sea", "baseline", [[-1.0, 3.0], None]) == (
        False,
        "no significant difference at this scale",
    )
    significant, sentence = verdict("sea", "baseline", [[-0.9, 12.9], [1.1, 9.6]])
    assert not significant
    assert sentence == (
        "no significant difference at this scale: the interval over questions contains 0 "
        "(the one over seeds does not)"
    )
    both = verdict("sea", "baseline", [[-2.0, 1.0], [-1.0, 2.0]])
    assert both == (False, "no significant difference at this scale")
    assert verdict("sea", "baseline", [[1.0, 2.0], [-2.0, -1.0]]) == (
        False,
        "no significant difference at this scale",
    )
    assert verdict("sea", "baseline", [None, None])[1].startswith("no interval")


def test_a_one_seed_verdict_says_seed_variation_is_not_in_it():
    from sea.eval.stats import verdict

    significant, sentence = verdict("sea", "baseline", [[1.6, 13.6], None])
    assert significant
    assert sentence == (
        "sea is higher than baseline over questions, but no interval over seeds (fewer than 3 "
        "seeds): training-seed variation is not in this verdict, and another seed can reverse it"
    )
    assert verdict("sea", "baseline", [None, [0.5, 2.0]]) == (
        True,
        "sea is higher than baseline over seeds, but no interval over questions: what it would cover is not "
        "in this verdict",
    )
