"""Tiny stand-ins for LLaVA-1.5's `playground/data/eval` tree (the paths of conf/data/llava.yaml), one to
three questions per benchmark, in each benchmark's own file formats."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from eval_helpers import write_jsonl

SHORT = "\nAnswer the question using a single word or phrase."
MC = "\nAnswer with the option's letter from the given choices directly."
COLUMNS = [
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
]


def _png(path: Path | None = None, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 12), color).save(buf, format="PNG")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _tsv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)] + ["\t".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_llava_eval_tree(data_root: Path) -> Path:
    """`<data_root>/eval/...` for every benchmark of conf/data/llava.yaml; returns `data_root`."""
    ev = data_root / "eval"
    # VQAv2 test-dev (2 questions) inside the full test2015 list (3), and a val split with annotations.
    test = [
        {"question_id": q, "image": f"COCO_test2015_{q:012d}.jpg", "text": t + SHORT, "category": "default"}
        for q, t in ((1, "Is it red?"), (2, "How many?"), (3, "What color?"))
    ]
    write_jsonl(ev / "vqav2/llava_vqav2_mscoco_test2015.jsonl", test)
    write_jsonl(ev / "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl", test[:2])
    for q in test:
        _png(ev / "vqav2/test2015" / q["image"])
    _json(
        ev / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json",
        {
            "data_subtype": "val2014",
            "questions": [
                {"question_id": 10, "image_id": 7, "question": "Is it red?"},
                {"question_id": 11, "image_id": 7, "question": "What shape?"},
            ],
        },
    )
    _json(
        ev / "vqav2/v2_mscoco_val2014_annotations.json",
        {
            "annotations": [
                {"question_id": 10, "answer_type": "yes/no", "answers": [{"answer": "yes"}] * 10},
                {"question_id": 11, "answer_type": "other", "answers": [{"answer": "square"}] * 10},
            ]
        },
    )
    _png(ev / "vqav2/val2014/COCO_val2014_000000000007.jpg")
    # GQA testdev-balanced.
    write_jsonl(
        ev / "gqa/llava_gqa_testdev_balanced.jsonl",
        [
            {
                "question_id": "201307251",
                "image": "n161313.jpg",
                "text": "Is it overcast?" + SHORT,
                "category": "default",
            },
        ],
    )
    _png(ev / "gqa/data/images/n161313.jpg")
    _json(
        ev / "gqa/data/testdev_balanced_questions.json",
        {
            "201307251": {
                "answer": "no",
                "types": {"structural": "verify", "semantic": "attr"},
                "isBalanced": True,
            },
        },
    )
    # VizWiz test (the suffix is in LLaVA's file).
    vizwiz = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT
    write_jsonl(
        ev / "vizwiz/llava_test.jsonl",
        [
            {
                "question_id": 0,
                "image": "VizWiz_test_00000000.jpg",
                "text": "What is this?" + vizwiz,
                "category": "default",
            },
            {
                "question_id": 1,
                "image": "VizWiz_test_00000001.jpg",
                "text": "Which color?" + vizwiz,
                "category": "default",
            },
        ],
    )
    for i in range(2):
        _png(ev / f"vizwiz/test/VizWiz_test_{i:08d}.jpg")
    # ScienceQA-IMG test: LLaVA's conversation list, ScienceQA's problems and splits.
    _json(
        ev / "scienceqa/llava_test_CQM-A.json",
        [
            {
                "id": "5",
                "image": "5/image.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nContext: A leaf.\nWhich is green?\nA. leaf\nB. sky"},
                    {"from": "gpt", "value": "A"},
                ],
            },
            {
                "id": "6",
                "conversations": [
                    {"from": "human", "value": "Context: N/A\nWhich is a fish?\nA. cat\nB. trout\nC. dog"},
                    {"from": "gpt", "value": "B"},
                ],
            },
        ],
    )
    _png(ev / "scienceqa/images/test/5/image.png")
    _json(
        ev / "scienceqa/problems.json",
        {
            "5": {"choices": ["leaf", "sky"], "answer": 0, "image": "image.png", "split": "test"},
            "6": {"choices": ["cat", "trout", "dog"], "answer": 1, "image": None, "split": "test"},
            "7": {"choices": ["x", "y"], "answer": 0, "image": None, "split": "val"},
        },
    )
    _json(ev / "scienceqa/pid_splits.json", {"test": ["5", "6"], "val": ["7"]})
    # TextVQA val (question_id is the image id).
    write_jsonl(
        ev / "textvqa/llava_textvqa_val_v051_ocr.jsonl",
        [
            {
                "question_id": "003a8ae2ef43b901",
                "image": "003a8ae2ef43b901.jpg",
                "text": "What is written?\nReference OCR token: STOP" + SHORT,
            },
        ],
    )
    _png(ev / "textvqa/train_images/003a8ae2ef43b901.jpg")
    _json(
        ev / "textvqa/TextVQA_0.5.1_val.json",
        {
            "data": [
                {"image_id": "003a8ae2ef43b901", "question": "What is written?", "answers": ["stop"] * 10},
            ]
        },
    )
    # POPE: one question per category.
    pope = [
        {
            "question_id": i + 1,
            "image": "COCO_val2014_000000310196.jpg",
            "category": c,
            "text": "Is there a snowboard in the image?" + SHORT,
        }
        for i, c in enumerate(("adversarial", "popular", "random"))
    ]
    write_jsonl(ev / "pope/llava_pope_test.jsonl", pope)
    _png(ev / "pope/val2014/COCO_val2014_000000310196.jpg")
    for q in pope:
        write_jsonl(
            ev / f"pope/coco/coco_pope_{q['category']}.json",
            [
                {
                    "question_id": 1,
                    "image": q["image"],
                    "text": "Is there a snowboard in the image?",
                    "label": "yes",
                },
            ],
        )
    # MME: one image of the release layout, its two questions.
    mme = ev / "MME/MME_Benchmark_release_version/existence"
    _png(mme / "000000006040.jpg")
    pair = [
        "Is there a train in this image? Please answer yes or no.",
        "Is there a bed in this image? Please answer yes or no.",
    ]
    (mme / "000000006040.txt").write_text(f"{pair[0]}\tYes\n{pair[1]}\tNo\n", encoding="utf-8")
    write_jsonl(
        ev / "MME/llava_mme.jsonl",
        [
            {
                "question_id": "existence/000000006040.jpg",
                "image": "existence/000000006040.jpg",
                "text": q + SHORT,
                "category": "existence",
            }
            for q in pair
        ],
    )
    # MMBench dev (with a circular copy), test (no answers), and CN dev.
    img = base64.b64encode(_png()).decode()
    dev = [
        {
            "index": 0,
            "question": "Which color?",
            "hint": "nan",
            "A": "red",
            "B": "blue",
            "C": "",
            "D": "",
            "answer": "A",
            "category": "color",
            "image": img,
            "source": "x",
            "l2-category": "attribute",
            "comment": "nan",
            "split": "dev",
        },
        {
            "index": 1000000,
            "question": "Which color?",
            "hint": "nan",
            "A": "blue",
            "B": "red",
            "C": "",
            "D": "",
            "answer": "B",
            "category": "color",
            "image": "0",
            "source": "x",
            "l2-category": "attribute",
            "comment": "nan",
            "split": "dev",
        },
    ]
    _tsv(ev / "mmbench/mmbench_dev_20230712.tsv", dev, COLUMNS)
    _tsv(ev / "mmbench/mmbench_test_20230712.tsv", dev, [c for c in COLUMNS if c != "answer"])
    _tsv(ev / "mmbench_cn/mmbench_dev_cn_20231003.tsv", dev, COLUMNS)
    # SEED-Bench (image questions).
    write_jsonl(
        ev / "seed_bench/llava-seed-bench.jsonl",
        [
            {
                "question_id": "101669",
                "image": "SEED-Bench-image/1454426_2591111986.jpg",
                "text": "How many towels?\nA. 1\nB. 2\nC. 0\nD. 3" + MC,
                "category": "Instances Counting",
            },
        ],
    )
    _png(ev / "seed_bench/SEED-Bench-image/1454426_2591111986.jpg")
    _json(
        ev / "seed_bench/SEED-Bench.json",
        {
            "questions": [
                {"question_id": "101669", "answer": "A", "question_type_id": 5, "data_type": "image"}
            ],
            "question_type": {"Instances Counting": 5},
        },
    )
    # MM-Vet (open-ended, no suffix).
    write_jsonl(
        ev / "mm-vet/llava-mm-vet.jsonl",
        [
            {"question_id": 0, "image": "v1_0.png", "text": "What is x in the equation?", "category": "conv"},
            {"question_id": 1, "image": "v1_1.png", "text": "What is shown?", "category": "conv"},
        ],
    )
    for i in range(2):
        _png(ev / f"mm-vet/images/v1_{i}.png")
    return data_root
