"""The paper's Table 2 benchmarks in LLaVA's layout: the prompts and formats of the new benchmarks, the
upload files of the server-scored ones, reading a server's scores back, no silent zeros in the CLI, and
a dry check of the real preset's `evaluate` stage on tiny stand-in files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import answer, write_jsonl
from llava_layout import make_llava_eval_tree

from sea.config import compose
from sea.errors import SeaError
from sea.eval.batch_generate import SHORT_SUFFIX, benchmark_specs, load_questions
from sea.eval.score import main as score_main
from sea.eval.server import read_server_result
from sea.eval.uploads import write_upload
from sea.eval.xlsx import read_xlsx

PRESET = "sea_llava15_gemma2b"
TABLE2_LOCAL = {"vqav2_val", "textvqa", "gqa", "sqa", "mmbench", "pope"}
TABLE2_SERVER = {"vqav2", "vizwiz", "mmbench_test", "mmvet"}


@pytest.fixture(scope="module")
def llava_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_llava_eval_tree(tmp_path_factory.mktemp("llava") / "playground" / "data")


def preset_cfg(llava_root: Path, *overrides: str):
    return compose([f"experiment={PRESET}", f"data.root={llava_root}", "tracking=none", *overrides])


def test_presets_list_table2_and_llava_yaml_every_benchmark(llava_root: Path):
    for preset in (PRESET, "sea_llava15_vicuna7b"):
        cfg = compose([f"experiment={preset}"])
        assert set(cfg.eval.benchmarks) == TABLE2_LOCAL | TABLE2_SERVER | {"mme"}, preset
    cfg = preset_cfg(llava_root)
    scorable = {"gqa", "pope", "mme", "mmbench", "mmbench_cn", "sqa", "seed", "textvqa", "vqav2_val"}
    assert set(cfg.data.eval_sets) == scorable | TABLE2_SERVER
    for name, spec in cfg.data.eval_sets.items():  # the stand-in tree has LLaVA's paths
        for key in ("questions", "image_folder", "annotations", "all_questions"):
            if spec.get(key):
                assert Path(spec[key]).exists(), (name, key, spec[key])
    specs = {s.name: s for s in benchmark_specs(cfg.eval, cfg.data.eval_sets)}
    assert {n for n, s in specs.items() if s.scorer is None} == TABLE2_SERVER
    assert {n: s.upload for n, s in specs.items() if s.upload} == {
        "vqav2": "vqav2",
        "vizwiz": "vizwiz",
        "mmbench": "mmbench",
        "mmbench_test": "mmbench",
        "mmvet": "mmvet",
    }


def test_prepare_validates_every_format_of_the_layout(llava_root: Path):
    from sea.data.validate import validate_eval_set

    cfg = preset_cfg(llava_root)
    for name, spec in cfg.data.eval_sets.items():
        res = validate_eval_set(dict(spec), check_images=True)  # fail mode: any problem raises
        assert res.total == res.kept > 0, name


def test_new_prompts_follow_llava(llava_root: Path):
    cfg = preset_cfg(llava_root, "eval.benchmarks=[vqav2,vqav2_val,vizwiz,mmvet,textvqa,mmbench_cn]")
    specs = {s.name: s for s in benchmark_specs(cfg.eval, cfg.data.eval_sets)}
    val = load_questions(specs["vqav2_val"])  # the official VQA questions JSON + LLaVA's short suffix
    assert [(q.question_id, q.prompt, q.image) for q in val] == [
        (10, "Is it red?" + SHORT_SUFFIX, "COCO_val2014_000000000007.jpg"),
        (11, "What shape?" + SHORT_SUFFIX, "COCO_val2014_000000000007.jpg"),
    ]
    vizwiz = load_questions(specs["vizwiz"])[0]  # LLaVA's file carries the suffix: nothing is added
    assert (
        vizwiz.prompt.endswith("respond with 'Unanswerable'." + SHORT_SUFFIX) and vizwiz.text == vizwiz.prompt
    )
    assert load_questions(specs["mmvet"])[0].prompt == "What is x in the equation?"  # open-ended: no suffix
    assert load_questions(specs["vqav2"])[1].prompt == "How many?" + SHORT_SUFFIX
    cn = load_questions(specs["mmbench_cn"])[0]
    assert (
        cn.text == "Which color?\nA. red\nB. blue\n请直接回答选项字母。"
        and cn.prompt == "Which color?\nA. red\nB. blue"
    )


def test_vqav2_upload_covers_test2015(llava_root: Path, tmp_path: Path):
    ev = llava_root / "eval/vqav2"
    answers = [answer(1, "Yes."), answer(2, "Two")]
    out = write_upload(
        "vqav2",
        answers,
        tmp_path / "up.json",
        ev / "llava_vqav2_mscoco_test-dev2015.jsonl",
        all_questions=ev / "llava_vqav2_mscoco_test2015.jsonl",
    )
    assert (tmp_path / "up.json").read_text() == (
        '[{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": "2"}, '
        '{"question_id": 3, "answer": ""}]'
    )  # EvalAIAnswerProcessor; test-standard ids get ""
    assert out["counts"] == {"questions": 2, "answered": 2, "missing": 0, "rows": 3}
    with pytest.raises(SeaError, match="1 of 2 question"):
        write_upload(
            "vqav2",
            answers[:1],
            tmp_path / "x.json",
            ev / "llava_vqav2_mscoco_test-dev2015.jsonl",
            all_questions=ev / "llava_vqav2_mscoco_test2015.jsonl",
        )
    with pytest.raises(SeaError, match="match no question"):
        write_upload(
            "vqav2",
            [answer(99, "x")],
            tmp_path / "x.json",
            ev / "llava_vqav2_mscoco_test2015.jsonl",
            all_questions=ev / "llava_vqav2_mscoco_test2015.jsonl",
        )
    with pytest.raises(SeaError, match="full test2015"):
        write_upload("vqav2", answers, tmp_path / "x.json", ev / "llava_vqav2_mscoco_test-dev2015.jsonl")


def test_vizwiz_and_mmvet_uploads(llava_root: Path, tmp_path: Path):
    ev = llava_root / "eval"
    write_upload(
        "vizwiz",
        [answer(1, "Blue!"), answer(0, "unanswerable")],
        tmp_path / "v.json",
        ev / "vizwiz/llava_test.jsonl",
    )
    assert json.loads((tmp_path / "v.json").read_text()) == [
        {"image": "VizWiz_test_00000000.jpg", "answer": "unanswerable"},
        {"image": "VizWiz_test_00000001.jpg", "answer": "blue"},
    ]  # question-file order
    with pytest.raises(SeaError, match="vizwiz upload: 1 of 2"):
        write_upload("vizwiz", [answer(1, "x")], tmp_path / "v2.json", ev / "vizwiz/llava_test.jsonl")
    write_upload(
        "vizwiz", [answer(1, "x")], tmp_path / "v2.json", ev / "vizwiz/llava_test.jsonl", allow_missing=True
    )
    assert json.loads((tmp_path / "v2.json").read_text())[0]["answer"] == ""
    write_upload(
        "mmvet",
        [answer(1, "A cat."), answer(0, "x = 3")],
        tmp_path / "m.json",
        ev / "mm-vet/llava-mm-vet.jsonl",
    )
    assert (tmp_path / "m.json").read_text() == '{\n  "v1_1": "A cat.",\n  "v1_0": "x = 3"\n}'


def test_mmbench_upload_is_llava_xlsx(llava_root: Path, tmp_path: Path):
    tsv = llava_root / "eval/mmbench/mmbench_dev_20230712.tsv"
    write_upload("mmbench", [answer(0, "A"), answer(1000000, "B. red")], tmp_path / "m.xlsx", tsv)
    rows = read_xlsx(tmp_path / "m.xlsx")
    assert rows == [
        ["index", "question", "A", "B", "C", "D", "prediction", "answer", "split"],
        [0, "Which color?", "red", "blue", None, None, "A", "A", "dev"],
        [1000000, "Which color?", "blue", "red", None, None, "B. red", "B", "dev"],
    ]
    test = llava_root / "eval/mmbench/mmbench_test_20230712.tsv"
    write_upload("mmbench", [answer(0, "A"), answer(1000000, "B")], tmp_path / "t.xlsx", test)
    assert read_xlsx(tmp_path / "t.xlsx")[0] == [
        "index",
        "question",
        "A",
        "B",
        "C",
        "D",
        "prediction",
        "split",
    ]
    with pytest.raises(SeaError, match="mmbench upload: 1 of 2"):
        write_upload("mmbench", [answer(0, "A")], tmp_path / "t.xlsx", test)


def test_server_results_are_read_and_merged(tmp_path: Path, capsys):
    evalai = tmp_path / "evalai.json"
    evalai.write_text(
        json.dumps([{"test-dev": {"yes/no": 91.25, "number": 58.5, "other": 72.0, "overall": 78.5}}])
    )
    res = read_server_result("vqav2", evalai)
    assert res["metrics"] == {"accuracy": 78.5, "type/yes/no": 91.25, "type/number": 58.5, "type/other": 72.0}
    assert res["server"]["split"] == "test-dev" and res["server"]["status"] == "scored"
    mmb = tmp_path / "mmbench_acc.csv"
    mmb.write_text("split,Overall,AR,CP\ndev,0.643,0.5,0.7\ntest,0.65,0.6,0.7\n")
    with pytest.raises(SeaError, match="name one with --split"):
        read_server_result("mmbench", mmb)
    assert read_server_result("mmbench", mmb, "test")["metrics"] == pytest.approx(
        {"accuracy": 65.0, "type/AR": 60.0, "type/CP": 70.0}
    )  # fractions read as percent
    mmvet = tmp_path / "llava_gpt-4-0613-cap-score-1runs.csv"
    mmvet.write_text("rec,ocr,know,gen,spat,math,total,std\n32.1,21.0,17.3,19.2,24.9,7.7,31.1,0.0\n")
    assert next(iter(read_server_result("mmvet", mmvet)["metrics"].items())) == ("total", 31.1)
    scores = tmp_path / "scores.json"
    pending = {
        "benchmark": "vqav2",
        "metrics": {},
        "counts": {"questions": 2},
        "upload": "uploads/vqav2.json",
        "server": {"name": "EvalAI", "status": "pending"},
    }
    scores.write_text(json.dumps({"vqav2": pending, "gqa": {"metrics": {"accuracy": 60.0}}}))
    assert score_main(["vqav2", "--server-result", str(evalai), "--into", str(scores)]) == 0
    assert "| vqav2/accuracy | 78.50 |" in capsys.readouterr().out
    merged = json.loads(scores.read_text())
    assert (
        merged["vqav2"]["metrics"]["accuracy"] == 78.5 and merged["vqav2"]["upload"] == "uploads/vqav2.json"
    )
    assert merged["vqav2"]["server"]["status"] == "scored" and merged["gqa"]["metrics"]["accuracy"] == 60.0
    assert score_main(["vizwiz", "--server-result", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_refuses_partial_answer_files(tmp_path: Path, capsys):
    ann = tmp_path / "testdev_balanced_questions.json"
    ann.write_text(json.dumps({str(i): {"answer": "yes"} for i in range(10)}))
    partial = write_jsonl(tmp_path / "a.jsonl", [answer("0", "yes")])
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    assert score_main(["gqa", "--answers", str(empty), "--annotations", str(ann)]) == 2
    assert "gqa: 10 of 10 question(s)" in capsys.readouterr().err
    assert score_main(["gqa", "--answers", str(partial), "--annotations", str(ann)]) == 2
    assert "9 of 10" in capsys.readouterr().err
    assert score_main(["gqa", "--answers", str(partial), "--annotations", str(ann), "--allow-missing"]) == 0
    out = capsys.readouterr()
    assert (
        "| gqa/accuracy | 10.00 |" in out.out
        and "warning: gqa: 9 of 10 question(s) have no answer" in out.err
    )
    assert score_main(["vizwiz", "--answers", str(partial), "--annotations", str(ann)]) == 2
    assert "use --upload" in capsys.readouterr().err
    assert score_main(["gqa", "--answers", str(partial), "--annotations", str(ann), "--strict"]) == 2
    assert "sqa only" in capsys.readouterr().err


def test_evaluate_dry_check_writes_every_answer_and_upload_file(
    llava_root: Path, model_dir: Path, tmp_path: Path, one_thread
):
    """`python -m sea evaluate` with the real preset's benchmark list on the stand-in tree (tiny model)."""
    from sea.__main__ import main as sea_main

    short = [f"eval.registry.{b}.max_new_tokens=3" for b in ("sqa", "mmbench", "mmbench_test", "mmvet")]
    args = [
        "evaluate",
        "--arm",
        "sea",
        f"experiment={PRESET}",
        f"data.root={llava_root}",
        f"paths.root={tmp_path}",
        "hardware=cpu",
        "tracking=none",
        f"eval.models={{sea:'{model_dir}'}}",
        "eval.template=vicuna_v1",
        "eval.device=cpu",
        "eval.batch_size=4",
        "eval.max_new_tokens=3",
        "eval.diagnostics.enabled=false",
        "eval.diagnostics.wordlist=null",
        *short,
    ]
    assert sea_main(args) == 0
    out = tmp_path / "evaluate" / "seed0" / "sea"
    cfg = preset_cfg(llava_root)
    for name in cfg.eval.benchmarks:
        assert (out / "answers" / f"{name}.jsonl").is_file(), name
    uploads = {p.name for p in (out / "uploads").iterdir()}
    assert uploads == {"vqav2.json", "vizwiz.json", "mmbench.xlsx", "mmbench_test.xlsx", "mmvet.json"}
    assert len(json.loads((out / "uploads" / "vqav2.json").read_text())) == 3  # all of test2015
    scores = json.loads((out / "scores.json").read_text())
    for name in TABLE2_SERVER:
        assert scores[name]["metrics"] == {} and scores[name]["server"]["status"] == "pending", name
        assert scores[name]["upload"] == f"uploads/{Path(scores[name]['upload']).name}"
    for name in TABLE2_LOCAL | {"mme"}:
        assert scores[name]["metrics"] and scores[name]["counts"].get("missing", 0) == 0, name
    assert scores["mmbench"]["upload"] == "uploads/mmbench.xlsx"
    assert sum(v for k, v in scores["mmbench"]["counts"].items() if k.startswith("path/")) == 2
    metrics = json.loads((tmp_path / "metrics" / "evaluate" / "seed0-sea.json").read_text())
    assert {k for k in metrics if k.startswith("server_pending/")} == {
        f"server_pending/{n}" for n in TABLE2_SERVER
    }
