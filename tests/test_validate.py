"""Dataset validators (every problem class, fail-fast and skip-and-count) and the `prepare` stage."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from sea.data.validate import (
    KINDS,
    DatasetError,
    Problem,
    check_conversation,
    validate_conversations,
    validate_eval_set,
    validate_mmbench,
    validate_questions,
)
from sea.errors import SeaError
from sea.layout import HELD_OUT, manifest_path
from sea.stages import prepare


def png_bytes(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def pretrain_sample(i: int, image: str | None = None, caption: str = "a red circle") -> dict:
    return {
        "id": f"{i:06d}",
        "image": image or f"img/{i}.png",
        "conversations": [
            {"from": "human", "value": "Describe the image.\n<image>"},
            {"from": "gpt", "value": caption},
        ],
    }


def instruct_sample(i: int, image: bool = True) -> dict:
    sample = {
        "id": f"q{i}",
        "conversations": [
            {"from": "human", "value": ("<image>\n" if image else "") + "What colour?"},
            {"from": "gpt", "value": "Red."},
            {"from": "human", "value": "Which shape?"},
            {"from": "gpt", "value": "Circle."},
        ],
    }
    if image:
        sample["image"] = f"img/{i}.png"
    return sample


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    for i in range(10):
        (tmp_path / "img" / f"{i}.png").write_bytes(png_bytes())
    return tmp_path


def write_json(path: Path, samples: list) -> Path:
    path.write_text(json.dumps(samples, indent=1))
    return path


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def fail_message(fn, *args, **kwargs) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        fn(*args, on_error="fail", **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


# --------------------------------------------------------------------------------- good data


def test_good_pretrain_json_and_jsonl(root: Path):
    samples = [pretrain_sample(i) for i in range(5)]
    for path in (write_json(root / "p.json", samples), write_jsonl(root / "p.jsonl", samples)):
        r = validate_conversations(path, root, schema="pretrain", check_images=True)
        assert (r.total, r.kept, r.n_skipped) == (5, 5, 0)
        assert r.rows[0]["id"] == "000000" and r.rows[0]["image"] == "img/0.png" and r.rows[0]["n_turns"] == 2
        assert set(r.skipped) == set(KINDS)
    assert r.rows[2]["line"] == 3 and r.rows[2]["index"] == 2


def test_text_only_instruct_sample_is_fine(root: Path):
    path = write_json(root / "i.json", [instruct_sample(0), instruct_sample(1, image=False)])
    r = validate_conversations(path, root, schema="instruct")
    assert r.kept == 2 and r.rows[1]["image"] is None and r.rows[1]["n_turns"] == 4


# ------------------------------------------------------------------------ each problem class


def test_malformed_json_line(root: Path):
    good = [json.dumps(pretrain_sample(i)) for i in range(3)]
    path = write_jsonl(root / "p.jsonl", [good[0], '{"id": "x", "conversations": [', good[1], good[2]])
    err = fail_message(validate_conversations, path, root, schema="pretrain")
    assert err.problem.kind == "malformed_json"
    assert str(path) in str(err) and "line 2" in str(err) and "invalid JSON" in str(err)

    r = validate_conversations(path, root, schema="pretrain", on_error="skip")
    assert (r.total, r.kept, r.skipped["malformed_json"]) == (4, 3, 1)
    assert r.problems[0].where == "line 2"


def test_broken_json_list_names_line_and_column(root: Path):
    path = root / "p.json"
    path.write_text('[\n {"id": "1", "conversations": []},\n {"id": "2" "image": "x"}\n]\n')
    for on_error in ("fail", "skip"):  # nothing to skip to: the whole file is unreadable
        with pytest.raises(DatasetError) as info:
            validate_conversations(path, root, schema="pretrain", on_error=on_error)
        msg = str(info.value)
        assert str(path) in msg and "line 3 column" in msg and "invalid JSON" in msg
        assert info.value.problem.kind == "malformed_json"


def test_json_lines_in_a_json_file_gets_a_hint(root: Path):
    path = write_jsonl(root / "p.json", [pretrain_sample(0), pretrain_sample(1)])
    err = fail_message(validate_conversations, path, root)
    assert "line 2 column 1" in str(err) and ".jsonl" in str(err)


@pytest.mark.parametrize(
    ("sample", "schema", "kind", "reason"),
    [
        ({"image": "img/0.png", "conversations": []}, "pretrain", "missing_key", "missing key 'id'"),
        ({"id": "7", "image": "img/0.png"}, "pretrain", "missing_key", "missing key 'conversations'"),
        (
            {
                "id": "7",
                "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "x"}],
            },
            "pretrain",
            "missing_key",
            "missing key 'image'",
        ),
        (
            {"id": "7", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt"}]},
            "instruct",
            "missing_key",
            "missing key 'value' in conversations turn 2",
        ),
        ({"id": "7", "conversations": []}, "instruct", "bad_turns", "conversations are empty"),
        (
            {"id": "7", "conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "b"}]},
            "instruct",
            "bad_turns",
            "(turn 1 is from 'gpt')",
        ),
        (
            {"id": "7", "conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
            "instruct",
            "bad_turns",
            "conversations do not alternate human/gpt (turn 2 is from 'human')",
        ),
        (
            {
                "id": "7",
                "conversations": [
                    {"from": "human", "value": "a"},
                    {"from": "gpt", "value": "b"},
                    {"from": "human", "value": "c"},
                ],
            },
            "instruct",
            "bad_turns",
            "odd number of turns (3)",
        ),
        (
            {
                "id": "7",
                "image": "img/0.png",
                "conversations": [
                    {"from": "human", "value": "<image>a"},
                    {"from": "gpt", "value": "b"},
                    {"from": "human", "value": "c"},
                    {"from": "gpt", "value": "d"},
                ],
            },
            "pretrain",
            "bad_turns",
            "exactly 2 turns",
        ),
        (
            {
                "id": "7",
                "image": "img/0.png",
                "conversations": [{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "b"}],
            },
            "pretrain",
            "image_token_missing",
            "no '<image>' in the first human turn",
        ),
        (
            {
                "id": "7",
                "image": "img/0.png",
                "conversations": [
                    {"from": "human", "value": "<image><image>"},
                    {"from": "gpt", "value": "b"},
                ],
            },
            "pretrain",
            "image_token_missing",
            "appears 2 times",
        ),
        (
            {
                "id": "7",
                "conversations": [{"from": "human", "value": "<image>\nhi"}, {"from": "gpt", "value": "b"}],
            },
            "instruct",
            "image_token_unexpected",
            "text-only sample",
        ),
        (
            {
                "id": "7",
                "image": "img/0.png",
                "conversations": [
                    {"from": "human", "value": "<image>a"},
                    {"from": "gpt", "value": "b"},
                    {"from": "human", "value": "<image> again"},
                    {"from": "gpt", "value": "d"},
                ],
            },
            "instruct",
            "image_token_unexpected",
            "'<image>' in turn 3",
        ),
        ({"id": "7", "image": "", "conversations": []}, "instruct", "bad_value", "'image' must be"),
    ],
)
def test_sample_problems_fail_and_skip(root: Path, sample: dict, schema: str, kind: str, reason: str):
    assert check_conversation(sample, schema)[0] == kind
    make = pretrain_sample if schema == "pretrain" else instruct_sample
    samples = [make(0), sample, make(1)]
    path = write_json(root / f"{schema}.json", samples)

    err = fail_message(validate_conversations, path, root, schema=schema)
    expected_where = "sample id 7" if "id" in sample else "index 1"
    assert err.problem == Problem(str(path), expected_where, kind, err.problem.reason)
    assert str(err).startswith(f"{path}: {expected_where}: ") and reason in str(err)

    r = validate_conversations(path, root, schema=schema, on_error="skip")
    assert (r.total, r.kept, r.n_skipped, r.skipped[kind]) == (3, 2, 1, 1)
    assert [row["index"] for row in r.rows] == [0, 2]
    assert reason in str(r.problems[0])

    jl = write_jsonl(root / f"{schema}.jsonl", samples)  # the same problem in JSON lines: line 2
    err = fail_message(validate_conversations, jl, root, schema=schema)
    assert str(err).startswith(f"{jl}: line 2") and reason in str(err)


def test_example_message_format(root: Path):
    bad = pretrain_sample(4539375)
    bad["id"] = "004539375"
    bad["conversations"][1]["from"] = "human"
    path = write_json(root / "pretrain.json", [bad])
    err = fail_message(validate_conversations, path, root, schema="pretrain")
    assert str(err) == (
        f"{path}: sample id 004539375: conversations do not alternate human/gpt (turn 2 is from 'human')"
    )


def test_missing_image(root: Path):
    path = write_json(root / "p.json", [pretrain_sample(0), pretrain_sample(1, image="img/nope.png")])
    err = fail_message(validate_conversations, path, root, schema="pretrain")
    assert err.problem.kind == "image_missing"
    assert str(path) in str(err) and "sample id 000001" in str(err) and "not found" in str(err)
    assert "nope.png" in str(err)

    r = validate_conversations(path, root, schema="pretrain", on_error="skip")
    assert (r.kept, r.skipped["image_missing"]) == (1, 1)


def test_unreadable_image_only_with_check_images(root: Path):
    (root / "img" / "garbage.png").write_bytes(b"\x00not an image at all" * 10)
    path = write_jsonl(root / "p.jsonl", [pretrain_sample(0), pretrain_sample(1, image="img/garbage.png")])
    r = validate_conversations(path, root, schema="pretrain", check_images=False)
    assert r.kept == 2  # existence only

    err = fail_message(validate_conversations, path, root, schema="pretrain", check_images=True)
    assert err.problem.kind == "image_unreadable"
    assert str(path) in str(err) and "line 2 (sample id 000001)" in str(err) and "cannot read" in str(err)

    r = validate_conversations(path, root, schema="pretrain", check_images=True, on_error="skip")
    assert (r.kept, r.skipped["image_unreadable"]) == (1, 1)


def test_duplicate_id(root: Path):
    path = write_json(
        root / "p.json", [pretrain_sample(0), pretrain_sample(1), pretrain_sample(0, image="img/2.png")]
    )
    err = fail_message(validate_conversations, path, root, schema="pretrain")
    assert err.problem.kind == "duplicate_id"
    assert str(path) in str(err) and "sample id 000000" in str(err) and "first seen at index 0" in str(err)

    r = validate_conversations(path, root, schema="pretrain", on_error="skip")
    assert (r.kept, r.skipped["duplicate_id"]) == (2, 1)
    assert validate_conversations(path, root, schema="pretrain", unique_ids=False).kept == 3


def test_skip_counts_several_kinds_and_logs(root: Path, caplog: pytest.LogCaptureFixture):
    bad_turns = pretrain_sample(3)
    bad_turns["conversations"] = bad_turns["conversations"][:1]
    lines = [
        json.dumps(pretrain_sample(0)),
        "not json",
        json.dumps(pretrain_sample(1, image="img/missing.png")),
        json.dumps(bad_turns),
        json.dumps(pretrain_sample(0)),
        json.dumps(pretrain_sample(2)),
    ]
    path = write_jsonl(root / "p.jsonl", lines)
    with caplog.at_level(logging.WARNING, logger="sea.data.validate"):
        r = validate_conversations(path, root, schema="pretrain", on_error="skip")
    assert r.total == 6 and r.kept == 2 and r.n_skipped == 4
    assert {k: n for k, n in r.skipped.items() if n} == {
        "malformed_json": 1,
        "image_missing": 1,
        "bad_turns": 1,
        "duplicate_id": 1,
    }
    assert [row["line"] for row in r.rows] == [1, 6]
    assert [p.where.split()[1] for p in r.problems] == ["2", "3", "4", "5"]
    assert "kept 2 of 6" in caplog.text and "line 2" in caplog.text
    summary = r.summary()
    assert summary["skipped"] == 4 and len(summary["problems"]) == 4
    metrics = r.metrics("pretrain")
    assert metrics["pretrain/skipped/bad_turns"] == 1 and metrics["pretrain/skipped/image_unreadable"] == 0
    assert all(f"pretrain/skipped/{k}" in metrics for k in KINDS)


def test_missing_file_and_bad_mode(root: Path):
    with pytest.raises(DatasetError, match="file not found"):
        validate_conversations(root / "nope.json", root, on_error="skip")
    path = write_json(root / "p.json", {"not": "a list"})
    with pytest.raises(DatasetError, match="expected a JSON list"):
        validate_conversations(path, root)
    with pytest.raises(SeaError, match="data.validation.on_error"):
        validate_conversations(write_json(root / "q.json", []), root, on_error="ignore")


# ---------------------------------------------------------------------------- eval questions


def question(i: int, **kw) -> dict:
    q = {
        "question_id": i,
        "image": f"{i}.png",
        "text": "Is it red?\nAnswer the question using a single word or phrase.",
        "category": "default",
    }
    q.update(kw)
    return q


@pytest.mark.parametrize(
    ("line", "kind", "reason"),
    [
        ('{"question_id": 5, "image": "5.png", "text": "x"', "malformed_json", "invalid JSON"),
        (json.dumps({"question_id": 5, "image": "5.png"}), "missing_key", "missing key 'text'"),
        (json.dumps({"image": "5.png", "text": "x"}), "missing_key", "missing key 'question_id'"),
        (json.dumps(question(5, text="<image>\nIs it red?")), "image_token_unexpected", "runner prepends"),
        (json.dumps(question(5, image="gone.png")), "image_missing", "not found"),
        (
            json.dumps(question(0)),
            "duplicate_id",
            "duplicate question_id 0 with the same text (first seen at line 1)",
        ),
        (json.dumps(question(5, image="bad.png")), "image_unreadable", "cannot read"),
    ],
)
def test_question_problems(root: Path, line: str, kind: str, reason: str):
    images = root / "images"
    images.mkdir()
    for i in range(10):
        (images / f"{i}.png").write_bytes(png_bytes())
    (images / "bad.png").write_bytes(b"garbage")
    path = write_jsonl(root / "q.jsonl", [json.dumps(question(0)), line, json.dumps(question(1))])
    err = fail_message(validate_questions, path, images, check_images=True)
    assert err.problem.kind == kind
    assert str(err).startswith(f"{path}: line 2") and reason in str(err)
    r = validate_questions(path, images, check_images=True, on_error="skip")
    assert (r.total, r.kept, r.skipped[kind]) == (3, 2, 1)
    assert r.rows[1] == {"question_id": 1, "image": "1.png", "category": "default", "index": 2, "line": 3}


def test_question_ids_may_repeat_when_allowed(root: Path):
    (root / "0.png").write_bytes(png_bytes())
    path = write_jsonl(
        root / "q.jsonl", [question(0), question(0, text="Is it blue?")]
    )  # as in LLaVA's MME file
    assert validate_questions(path, root).kept == 2
    err = fail_message(validate_questions, path, root, unique_ids=True)
    assert str(err) == f"{path}: line 2 (question_id 0): duplicate question_id 0 (first seen at line 1)"
    spec = {"format": "question_jsonl", "questions": str(path), "image_folder": str(root), "unique_ids": True}
    assert validate_eval_set(spec, on_error="skip").kept == 1


# ----------------------------------------------------------------------------------- MMBench

MMB_HEADER = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]


def mmb_row(index: int, answer: str = "A", image: str | None = None, **kw) -> dict:
    row = {
        "index": str(index),
        "question": "What shape?",
        "hint": "nan",
        "A": "circle",
        "B": "square",
        "C": "star",
        "D": "",
        "answer": answer,
        "category": "shape",
        "l2-category": "attr",
        "image": base64.b64encode(png_bytes()).decode() if image is None else image,
    }
    row.update(kw)
    return row


def write_tsv(path: Path, rows: list[dict], header: list[str] = MMB_HEADER) -> Path:
    lines = ["\t".join(header)] + ["\t".join(row.get(h, "") for h in header) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_good_mmbench(root: Path):
    path = write_tsv(root / "mmb.tsv", [mmb_row(0), mmb_row(1, "B"), mmb_row(1000001, "C", image="1")])
    r = validate_mmbench(path, check_images=True)
    assert (r.total, r.kept) == (3, 3)
    assert r.rows[0] == {"index": 0, "category": "shape", "answer": "A", "options": "ABC", "line": 2}
    assert "image" not in r.samples[0]
    assert (
        validate_eval_set({"format": "mmbench_tsv", "questions": str(path), "image_folder": None}).kept == 3
    )


@pytest.mark.parametrize(
    ("row", "kind", "reason"),
    [
        (mmb_row(7, question=""), "missing_key", "required column 'question'"),
        (mmb_row(7, answer="D"), "bad_value", "answer 'D' is not one of the options A, B, C"),
        (mmb_row(7, image="!!!not base64!!!"), "image_unreadable", "not valid base64"),
        (mmb_row(7, image=base64.b64encode(b"garbage bytes").decode()), "image_unreadable", "cannot read"),
        (mmb_row(0), "duplicate_id", "duplicate index 0 (first seen at line 2)"),
        (mmb_row(7, image="99"), "image_missing", "refers to index 99"),
    ],
)
def test_mmbench_problems(root: Path, row: dict, kind: str, reason: str):
    path = write_tsv(root / "mmb.tsv", [mmb_row(0), row, mmb_row(1)])
    index = row["index"]
    err = fail_message(validate_mmbench, path, check_images=True)
    assert err.problem.kind == kind
    assert str(err).startswith(f"{path}: line 3 (index {index}): ") and reason in str(err)
    r = validate_mmbench(path, check_images=True, on_error="skip")
    assert (r.total, r.kept, r.skipped[kind]) == (3, 2, 1)
    assert [x["index"] for x in r.rows] == [0, 1]


def test_mmbench_missing_column_and_long_row(root: Path):
    header = [h for h in MMB_HEADER if h != "question"]
    path = write_tsv(root / "mmb.tsv", [mmb_row(0)], header)
    with pytest.raises(DatasetError, match=r"line 1 \(header\): missing required column 'question'"):
        validate_mmbench(path, on_error="skip")
    test_split = write_tsv(root / "test.tsv", [mmb_row(0)], [h for h in MMB_HEADER if h != "answer"])
    assert [r["answer"] for r in validate_mmbench(test_split).rows] == [None]  # the server holds them
    path = root / "long.tsv"
    path.write_text("\t".join(MMB_HEADER) + "\n" + "\t".join(["x"] * 12) + "\n")
    err = fail_message(validate_mmbench, path)
    assert "line 2" in str(err) and "12 fields" in str(err)


# ------------------------------------------------------------------------ the prepare stage


def make_world(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    for i, color in enumerate(["red", "blue", "green", "yellow"]):
        (root / "images" / f"{i}.png").write_bytes(png_bytes(color))
    (root / "images" / "broken.png").write_bytes(b"not a png")
    pretrain = [
        {
            "id": str(i),
            "image": f"images/{i}.png",
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe."},
                {"from": "gpt", "value": f"A {c} circle at the top left."},
            ],
        }
        for i, c in enumerate(["red", "blue", "green", "yellow"])
    ]
    pretrain.append({"id": "9", "image": "images/broken.png", "conversations": pretrain[0]["conversations"]})
    (root / "pretrain.json").write_text(json.dumps(pretrain))
    instruct = [
        {
            "id": "q0",
            "image": "images/0.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat colour is the circle?"},
                {"from": "gpt", "value": "Red."},
            ],
        },
        {
            "id": "t0",
            "conversations": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi."}],
        },
        {
            "id": "q1",
            "image": "images/1.png",
            "conversations": [{"from": "human", "value": "No token."}, {"from": "gpt", "value": "Blue."}],
        },
    ]
    (root / "instruct.json").write_text(json.dumps(instruct))
    (root / "eval").mkdir()
    questions = [
        {"question_id": i, "image": f"{i}.png", "text": "Is there a circle?", "category": "default"}
        for i in range(3)
    ]
    (root / "eval" / "gqa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions) + "{broken\n")
    header = ["index", "question", "A", "B", "answer", "image"]
    image = base64.b64encode(png_bytes("red")).decode()
    rows = [
        ["0", "Which colour?", "red", "blue", "A", image],
        ["1", "Which colour?", "red", "blue", "C", image],
    ]
    (root / "eval" / "mmb.tsv").write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    (root / "world.json").write_text(
        json.dumps({"vocabulary": {"colors": ["red", "purple"], "positions": ["top left"]}})
    )


def make_cfg(root: Path, out: Path):
    return OmegaConf.create(
        {
            "paths": {"world": str(root), "prepared": str(out)},
            "eval": {"benchmarks": ["gqa", "mmbench", "pope"]},
            "data": {
                "source": "world",
                "pretrain": {"json": "${paths.world}/pretrain.json", "image_folder": "${paths.world}"},
                "instruct": {"json": "${paths.world}/instruct.json", "image_folder": "${paths.world}"},
                "eval_sets": {
                    "gqa": {
                        "format": "question_jsonl",
                        "questions": "${paths.world}/eval/gqa.jsonl",
                        "image_folder": "${paths.world}/images",
                        "annotations": None,
                    },
                    "mmbench": {
                        "format": "mmbench_tsv",
                        "questions": "${paths.world}/eval/mmb.tsv",
                        "image_folder": None,
                        "annotations": None,
                    },
                    "pope": {
                        "format": "question_jsonl",
                        "questions": None,
                        "image_folder": None,
                        "annotations": None,
                    },
                },
                "validation": {
                    "on_error": "skip",
                    "check_images": True,
                    "unique_ids": {"pretrain": True, "instruct": False, "eval": False},
                    "max_problems": 1000,
                    "max_chars": 100_000,
                },
                "wordlist": {
                    "size": 30,
                    "min_caption_count": 1,
                    "frequent_source": "wordfreq",
                    "lang": "en",
                    "min_length": 2,
                    "keep": [],
                    "allow": [],
                    "block": [],
                    "lemmatize": False,
                },
            },
        }
    )


def test_prepare_build(tmp_path: Path):
    root, out = tmp_path / "world", tmp_path / "prepared"
    make_world(root)
    out.mkdir()
    metrics = prepare.build(make_cfg(root, out), out)

    datasets = ["pretrain", "instruct", "eval_gqa", "eval_mmbench"]
    assert sorted(p.stem for p in (out / "manifests").glob("*.jsonl")) == sorted(datasets)
    rows = [json.loads(x) for x in (out / "manifests" / "pretrain.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3"] and rows[0]["image"] == "images/0.png"
    instruct = [json.loads(x) for x in (out / "manifests" / "instruct.jsonl").read_text().splitlines()]
    assert [r["id"] for r in instruct] == ["q0", "t0"] and instruct[1]["image"] is None

    expected = {
        "pretrain": (5, 4, {"image_unreadable": 1}),
        "instruct": (3, 2, {"image_token_missing": 1}),
        "eval_gqa": (4, 3, {"malformed_json": 1}),
        "eval_mmbench": (2, 1, {"bad_value": 1}),
    }
    report = json.loads((out / "report.json").read_text())
    for name, (total, kept, kinds) in expected.items():
        assert metrics[f"{name}/total"] == total and metrics[f"{name}/kept"] == kept
        assert metrics[f"{name}/skipped"] == total - kept
        for kind in KINDS:
            assert metrics[f"{name}/skipped/{kind}"] == kinds.get(kind, 0)
        entry = report["datasets"][name]
        assert (entry["total"], entry["kept"]) == (total, kept)
        assert len(entry["problems"]) == total - kept
    assert "broken.png" in report["datasets"]["pretrain"]["problems"][0]
    assert "line 4" in report["datasets"]["eval_gqa"]["problems"][0]
    assert metrics["instruct/with_image"] == 1
    assert all(isinstance(v, (int, float)) for v in metrics.values())

    words = (out / "wordlist.txt").read_text().splitlines()
    assert len(words) == 30 == metrics["wordlist/size"]
    assert words[0] == "circle"  # in all four kept captions ("red" etc. once each)
    assert {"red", "blue", "green", "yellow", "top", "left", "purple"} <= set(words)
    assert "the" not in words and "broken" not in words
    assert metrics["wordlist/from_keep"] == 1  # "purple": world vocabulary absent from the captions


def test_prepare_holds_out_the_last_pretrain_samples_for_the_diagnostics(tmp_path: Path):
    from dataclasses import replace

    from sea.config import compose, select
    from sea.eval.diagnostics import held_out_samples
    from sea.eval.settings import DiagnosticsSettings

    root, out = tmp_path / "world", tmp_path / "prepared"
    make_world(root)
    out.mkdir()
    cfg = make_cfg(root, out)
    cfg.data.pretrain.holdout = 1
    metrics = prepare.build(cfg, out)
    rows = [json.loads(x) for x in (out / "manifests" / "pretrain.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in manifest_path(out, HELD_OUT).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2"] and [r["id"] for r in held] == ["3"]
    assert metrics["pretrain/held_out"] == 1 and metrics["pretrain/kept"] == 4
    # the diagnostics take the held-out samples, and never an image a stage trained on
    samples = json.loads((root / "pretrain.json").read_text())
    trained = [str(out / "manifests" / "pretrain.jsonl")]
    conf = replace(DiagnosticsSettings.from_config(select(compose([]), "eval.diagnostics")), trained=trained)
    picked = held_out_samples(samples, replace(conf, held_out=str(manifest_path(out, HELD_OUT))), 10)
    assert [s["id"] for s in picked] == ["3"]
    assert [s["id"] for s in held_out_samples(samples, conf, 10)] == ["3", "9"]
    with pytest.raises(SeaError, match="were trained on"):
        held_out_samples([s for s in samples if s["id"] in "012"], conf, 10)
    cfg.data.pretrain.holdout = 4
    with pytest.raises(SeaError, match="holdout=4"):
        prepare.build(cfg, out)


def test_prepare_run_is_atomic_and_idempotent(tmp_path: Path):
    root, out = tmp_path / "world", tmp_path / "prepared"
    make_world(root)
    cfg = make_cfg(root, out)
    first = prepare.run(cfg)
    assert (out / "_SUCCESS.json").is_file() and (out / "wordlist.txt").is_file()
    assert prepare.run(cfg) == first
    assert prepare.STAGE.name == "prepare" and prepare.STAGE.out == "paths.prepared"
    assert "eval_mmbench" in json.loads((out / "report.json").read_text())["datasets"]


def test_prepare_checks_only_the_evaluated_benchmarks(tmp_path: Path):
    root = tmp_path / "world"
    make_world(root)
    data = OmegaConf.to_container(make_cfg(root, tmp_path / "prepared"), resolve=True)["data"]
    data["eval_sets"]["vizwiz"] = {"format": "question_jsonl", "questions": str(root / "absent.jsonl")}
    assert set(prepare.validate_all(data, ["gqa"])) == {"pretrain", "instruct", "eval_gqa"}
    with pytest.raises(SeaError, match="absent.jsonl"):
        prepare.validate_all(data, ["gqa", "vizwiz"])


def test_import_is_cheap():
    import subprocess
    import sys

    code = (
        "import time, omegaconf; t = time.perf_counter(); import sea.stages.prepare; "
        "print(time.perf_counter() - t); import sys; "
        "print(any(m in sys.modules for m in ('PIL', 'sklearn', 'wordfreq', 'tqdm')))"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(lines[0]) < 0.3 and lines[1] == "False"


def test_prepare_fails_when_a_dataset_loses_every_sample(tmp_path: Path):
    root, out = tmp_path / "world", tmp_path / "prepared"
    make_world(root)
    cfg = make_cfg(root, out)
    cfg.data.pretrain.image_folder = str(tmp_path / "elsewhere")
    with pytest.raises(
        SeaError, match=r"pretrain: all 5 samples were skipped; first: .*image file not found"
    ):
        prepare.run(cfg)
    assert not out.exists()
    cfg.data.validation.on_error = "fail"
    with pytest.raises(DatasetError, match=r"pretrain.json: sample id 0: image file not found"):
        prepare.run(cfg)
