"""The `evaluate` stage end to end on the tiny world with a tiny random SeaMLLM, and the scoring CLI on
its answer files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sea.config import select
from sea.errors import SeaError
from sea.eval.score import main as score_main
from sea.stages.evaluate import STAGE

ANSWER_KEYS = ["question_id", "prompt", "text", "answer_id", "model_id", "metadata"]
MMBENCH_KEYS = ["question_id", "round_id", "prompt", "text", "options", "option_char", *ANSWER_KEYS[3:]]


def stage_cfg(world_cfg, model_dir: Path, out: Path, **models: Path):
    cfg = OmegaConf.create(OmegaConf.to_container(world_cfg, resolve=True))
    cfg.paths.evaluate = str(out)
    cfg.eval.models = {k: str(v) for k, v in (models or {"sea": model_dir}).items()}
    cfg.eval.batch_size = 16
    cfg.eval.max_new_tokens = 4
    cfg.eval.diagnostics.wordlist = None  # no prepare stage here: decode over the world vocabulary
    cfg.eval.diagnostics.max_images = 4
    return cfg


@pytest.fixture(scope="module")
def evaluated(world_cfg, model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("evaluate") / "evaluate"
        cfg = stage_cfg(world_cfg, model_dir, out, sea=model_dir, baseline=model_dir)
        metrics = {arm: STAGE.run(cfg, arm) for arm in ("sea", "baseline")}
    finally:
        torch.set_num_threads(before)
    return cfg, out / "seed0", metrics


def question_ids(path: Path) -> list:
    if path.suffix == ".tsv":
        return [int(line.split("\t", 1)[0]) for line in path.read_text().splitlines()[1:]]
    return [json.loads(line)["question_id"] for line in path.read_text().splitlines()]


def test_answer_files_are_llava_format_in_question_order(evaluated):
    cfg, out, _ = evaluated
    for name, spec in select(cfg, "data.eval_sets").items():
        rows = [json.loads(x) for x in (out / "sea" / "answers" / f"{name}.jsonl").read_text().splitlines()]
        assert [r["question_id"] for r in rows] == question_ids(Path(spec["questions"])), name
        for r in rows:
            assert list(r) == (MMBENCH_KEYS if name == "mmbench" else ANSWER_KEYS)
            assert isinstance(r["text"], str) and r["model_id"] == "sea-seed0" and r["metadata"] == {}
        assert len({r["answer_id"] for r in rows}) == len(rows)


def test_every_benchmark_and_arm_is_scored(evaluated):
    cfg, out, metrics = evaluated
    scores = {arm: json.loads((out / arm / "scores.json").read_text()) for arm in ("sea", "baseline")}
    for arm in scores:
        assert set(scores[arm]) == {"gqa", "pope", "mme", "mmbench", "diagnostics"}
        for name in ("gqa", "pope", "mme", "mmbench"):
            assert scores[arm][name]["metrics"], name
            assert scores[arm][name]["counts"]["missing"] == 0
    for key in ("gqa/accuracy", "pope_random/f1", "pope/accuracy", "mme/perception", "mmbench/accuracy",
                "diagnostics/modality_gap", "diagnostics/tacs",
                "diagnostics/nearest_word/object_accuracy"):  # fmt: skip
        assert key in metrics["sea"] and key in metrics["baseline"], key
    assert metrics["sea"]["gqa/accuracy"] == metrics["baseline"]["gqa/accuracy"]  # same model, greedy
    table = (out / "sea" / "table.md").read_text()
    assert table.startswith("| metric | sea (seed 0) |") and "| pope_random/f1 |" in table
    assert "image 0" in (out / "sea" / "diagnostics" / "nearest_words.txt").read_text()


def test_per_unit_outcomes_are_written_next_to_the_scores(evaluated):
    """`outcomes.json` (what the report's bootstrap resamples) reproduces each scorer's headline."""
    from sea.eval.compare import headline
    from sea.eval.outcomes import point_headline

    _, out, _ = evaluated
    scores = json.loads((out / "sea" / "scores.json").read_text())
    outcomes = json.loads((out / "sea" / "outcomes.json").read_text())
    assert set(outcomes) == {"gqa", "pope", "mme", "mmbench"}
    for name, oc in outcomes.items():
        assert "outcomes" not in scores[name] and scores[name]["chance"]["metrics"], name
        assert point_headline(oc) == pytest.approx(headline(name, scores[name])[2], abs=1e-9), name


def test_cli_scores_the_stage_answers_identically(evaluated, capsys):
    cfg, out, metrics = evaluated
    pope = select(cfg, "data.eval_sets.pope")
    args = [
        "pope",
        "--answers",
        str(out / "sea" / "answers" / "pope.jsonl"),
        "--annotations",
        pope["annotations"],
    ]
    assert score_main([*args, "--questions", pope["questions"], "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["splits"]["random"]["f1"] == metrics["sea"]["pope_random/f1"]
    assert score_main(args) == 2  # pope needs the question file
    assert "question file" in capsys.readouterr().err
    mme = select(cfg, "data.eval_sets.mme")
    assert score_main(["mme", "--answers", str(out / "sea" / "answers" / "mme.jsonl"), "--annotations",
                       mme["annotations"]]) == 0  # fmt: skip
    assert "| mme/perception |" in capsys.readouterr().out


def test_stage_refuses_without_models(world_cfg, model_dir: Path, tmp_path: Path):
    cfg = stage_cfg(world_cfg, model_dir, tmp_path / "ev")
    cfg.eval.models = {}
    with pytest.raises(SeaError, match="eval.models is empty"):
        STAGE.run(cfg, "sea")
    cfg.eval.models = {"sea": str(tmp_path)}
    with pytest.raises(SeaError, match="not a saved SeaMLLM"):
        STAGE.run(cfg, "sea")
    with pytest.raises(SeaError, match="no model for arm 'baseline'"):
        STAGE.run(cfg, "baseline")
    cfg.eval.models = str(tmp_path)  # the instruct stage's layout: <models>/seed0/sea
    with pytest.raises(SeaError, match=r"seed0/sea is not a saved SeaMLLM"):
        STAGE.run(cfg, "sea")
    with pytest.raises(SeaError, match="arm 'nope' is not in arms"):
        STAGE.run(cfg, "nope")
