"""The benchmark runner: registry, LLaVA prompts per question format, batched == batch-1 answers, sharding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sea.config import select
from sea.errors import SeaError
from sea.eval.answers import read_answers
from sea.eval.batch_generate import (
    MC_SUFFIX,
    AnswerGenerator,
    BenchmarkSpec,
    EvalQuestion,
    ProcessInfo,
    benchmark_specs,
    load_questions,
    merge_shards,
    run_benchmark,
    shard_of,
)


def specs_of(cfg) -> dict[str, BenchmarkSpec]:
    return {s.name: s for s in benchmark_specs(select(cfg, "eval"), select(cfg, "data.eval_sets"))}


def test_registry_follows_config(world_cfg):
    specs = specs_of(world_cfg)
    assert list(specs) == ["gqa", "pope", "mme", "mmbench"]
    assert specs["mmbench"].suffix == MC_SUFFIX and specs["gqa"].suffix == ""
    assert specs["mmbench"].annotations == specs["mmbench"].questions  # the TSV holds the answers
    with pytest.raises(SeaError, match="does not define"):
        benchmark_specs({"benchmarks": ["vizwiz"]}, select(world_cfg, "data.eval_sets"))


def test_prompts_match_llava_runners(world_cfg, tmp_path: Path):
    specs = specs_of(world_cfg)
    gqa = load_questions(specs["gqa"])
    first = json.loads(Path(specs["gqa"].questions).read_text().splitlines()[0])
    assert gqa[0].question_id == first["question_id"] and gqa[0].text == gqa[0].prompt == first["text"]
    mmb = load_questions(specs["mmbench"])
    q = mmb[0]
    lines = q.prompt.split("\n")
    assert lines[-4:] == [f"{c}. {o}" for c, o in zip("ABCD", q.extra["options"], strict=True)]
    assert q.text == q.prompt + MC_SUFFIX and q.image_b64 and q.extra["round_id"] == 0
    # ScienceQA's LLaVA JSON (model_vqa_science --single-pred-prompt)
    sqa = tmp_path / "llava_test_CQM-A.json"
    human = "<image>\nContext: x\nQ?\nA. a\nB. b"
    rows = [
        {"id": "5", "image": "5/image.png", "conversations": [{"from": "human", "value": human}]},
        {"id": "6", "conversations": [{"from": "human", "value": "Q2?\nA. a\nB. b"}]},
    ]
    sqa.write_text(json.dumps(rows))
    qs = load_questions(BenchmarkSpec("sqa", "llava_json", sqa, None, None, "sqa", MC_SUFFIX))
    assert qs[0].prompt == "<image>\nContext: x\nQ?\nA. a\nB. b" + MC_SUFFIX
    assert qs[0].text == "Context: x\nQ?\nA. a\nB. b" + MC_SUFFIX and qs[0].has_image
    assert qs[1].prompt == "Q2?\nA. a\nB. b" + MC_SUFFIX and not qs[1].has_image


def test_batched_answers_equal_batch_one(model, world_cfg, one_thread):
    specs = specs_of(world_cfg)
    gen = AnswerGenerator(model, "vicuna_v1")
    gqa = load_questions(specs["gqa"])[:5]
    mmb = load_questions(specs["mmbench"])[:4]
    text_only = EvalQuestion("t1", "What is two plus two?", "What is two plus two?")
    mixed = [*gqa, text_only, *mmb]
    single = [gen.answer([q], specs["gqa"].image_folder, 1, 8)[0] for q in gqa]
    single += [gen.answer([text_only], None, 1, 8)[0]]
    single += gen.answer(mmb, None, 1, 8, sort_by_length=False)
    batched = gen.answer(mixed, specs["gqa"].image_folder, 5, 8)
    assert batched == single
    assert any(single), "the tiny model should produce some text"


def test_sharded_run_merges_in_question_order(model, world_cfg, tmp_path: Path, one_thread):
    spec = specs_of(world_cfg)["gqa"]
    gen = AnswerGenerator(model, "vicuna_v1")
    kwargs = {"model_id": "m", "batch_size": 4, "max_new_tokens": 3}
    run_benchmark(gen, spec, tmp_path / "single.jsonl", **kwargs)
    for rank in (2, 1, 0):  # the main process (rank 0) merges, so it runs last here
        run_benchmark(
            gen,
            spec,
            tmp_path / "merged.jsonl",
            proc=ProcessInfo(rank, 3),
            shard_dir=tmp_path / "shards",
            **kwargs,
        )
    single, merged = read_answers(tmp_path / "single.jsonl"), read_answers(tmp_path / "merged.jsonl")
    assert merged == single
    assert [a["question_id"] for a in merged] == [q.question_id for q in load_questions(spec)]
    assert not list((tmp_path / "shards").iterdir()), "shards are removed after the merge"


def test_merge_shards_checks_counts(tmp_path: Path):
    assert shard_of(7, 1, 3) == [1, 4]
    (tmp_path / "s0.jsonl").write_text("")
    with pytest.raises(SeaError, match="expected 1"):
        merge_shards([tmp_path / "s0.jsonl"], 1)
    with pytest.raises(SeaError, match="not found"):
        merge_shards([tmp_path / "s0.jsonl", tmp_path / "s1.jsonl"], 0)
