"""Each scorer against hand-made cases: the reference scripts' parsing rules and numbers, and the defined
behaviour where the reference crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import answer, write_jsonl

from sea.errors import SeaError
from sea.eval.scorers import get_scorer, score
from sea.eval.scorers.gqa import gqa_prediction, score_gqa
from sea.eval.scorers.mmbench import (
    can_infer_option,
    can_infer_text,
    infer_letter,
    is_none,
    read_mmbench_tsv,
    score_mmbench,
)
from sea.eval.scorers.mme import mme_parse, score_mme
from sea.eval.scorers.pope import pope_answer, pope_metrics, score_pope
from sea.eval.scorers.seed import score_seed
from sea.eval.scorers.sqa import score_sqa, sqa_letter
from sea.eval.scorers.vqa import (
    score_textvqa,
    score_vqav2,
    textvqa_accuracy,
    textvqa_answer_scores,
    textvqa_prompt_question,
    vqav2_accuracy,
)

# ----------------------------------------------------------------------------------- VQA / TextVQA


def test_textvqa_soft_score_is_leave_one_out():
    gts = ["red"] * 3 + ["blue"] * 7
    scores = textvqa_answer_scores(gts)
    assert scores["red"] == pytest.approx(0.9)  # 3 x 2/3 (own answer left out) + 7 x 1, over 10
    assert scores["blue"] == 1.0
    assert textvqa_accuracy("Red.", gts) == pytest.approx(0.9)  # normalised before matching
    assert textvqa_accuracy("green", gts) == 0.0
    assert textvqa_accuracy("red", ["red"] + ["x"] * 9) == pytest.approx(0.3)  # 1 x 0 + 9 x 1/3
    assert textvqa_accuracy("two", ["2"] * 2 + ["x"] * 8) == pytest.approx(0.6)  # (2 x 1/3 + 8 x 2/3) / 10


@pytest.mark.parametrize(
    ("prompt", "question"),
    [
        (
            "What is it?\nReference OCR token: A, B\nAnswer the question using a single word or phrase.",
            "what is it?",
        ),
        ("Reference OCR token: A\nWhat is it?\nAnswer briefly.", "what is it?"),
        ("Reference OCR token: A\nQuestion: Who?", "who?"),
        ("Which brand?\nAnswer the question using a single word or phrase.", "which brand?"),
        ("OCR tokens: a b Question: Where is it? Short answer:", "where is it?"),
    ],
)
def test_textvqa_prompt_processor(prompt: str, question: str):
    assert textvqa_prompt_question(prompt) == question


def test_textvqa_file_scoring_and_odd_answer_counts(tmp_path: Path):
    ann = tmp_path / "TextVQA_0.5.1_val.json"
    data = [
        {"image_id": "img1", "question": "What brand?", "answers": ["nike"] * 10},
        {"image_id": "img1", "question": "What color?", "answers": ["red"] * 4},  # not ten answers
        {"image_id": "img2", "question": "Which?", "answers": []},
    ]
    ann.write_text(json.dumps({"data": data}))
    sfx = "\nAnswer the question using a single word or phrase."
    answers = [
        answer("img1", "Nike", "What brand?" + sfx),
        answer("img1", "red", "What color?" + sfx),
        answer("img2", "a", "Which?" + sfx),
    ]
    res = score_textvqa(answers, ann)
    assert res["metrics"]["accuracy"] == pytest.approx(200 / 3)
    assert res["counts"]["not_ten_answers"] == 2
    with pytest.raises(SeaError, match="no answer"):
        score_textvqa(answers[:2], ann)
    assert score_textvqa(answers[:2], ann, allow_missing=True)["metrics"]["accuracy"] == 100.0
    with pytest.raises(SeaError, match="match no"):
        score_textvqa([answer("img9", "x", "Other?" + sfx)], ann, allow_missing=True)


def test_vqav2_accuracy_like_lmms_eval(tmp_path: Path):
    gts = ["2"] * 3 + ["two"] * 1 + ["3"] * 6
    # the answers disagree, so both sides get punctuation + digit/article processing: "two" -> "2"
    assert vqav2_accuracy("Two", gts) == 1.0
    assert vqav2_accuracy("3.", gts) == 1.0
    assert vqav2_accuracy("yes", ["yes"] * 10) == 1.0
    ann = tmp_path / "ann.json"
    rows = [
        {"question_id": 1, "answers": [{"answer": a} for a in gts], "answer_type": "number"},
        {"question_id": 2, "answers": [{"answer": "yes"}] * 10, "answer_type": "yes/no"},
    ]
    ann.write_text(json.dumps({"annotations": rows}))
    res = score_vqav2([answer(1, "3"), answer(2, "no")], ann)
    assert res["metrics"]["accuracy"] == 50.0
    assert res["metrics"]["answer_type/number"] == 100.0


# ----------------------------------------------------------------------------------- GQA


def test_gqa_conversion_and_missing_predictions(tmp_path: Path):
    assert gqa_prediction("Yes.") == "yes"
    assert gqa_prediction("The Red one..") == "the red one"
    assert gqa_prediction("left.right") == "left.right"
    ann = tmp_path / "testdev_balanced_questions.json"
    qs = {
        "1": {"answer": "yes", "types": {"structural": "verify", "semantic": "obj"}},
        "2": {"answer": "red", "types": {"structural": "query", "semantic": "attr"}},
        "3": {"answer": "no", "types": {"structural": "verify", "semantic": "obj"}},
        "4": {"answer": "no", "isBalanced": False},
    }
    ann.write_text(json.dumps(qs))
    partial = [answer("1", "Yes."), answer(2, "a red")]  # ids compared as strings
    with pytest.raises(SeaError, match=r"gqa: 1 of 3 question\(s\) .* have no answer"):
        score_gqa(partial, ann)
    res = score_gqa(partial, ann, allow_missing=True)
    assert res["metrics"]["accuracy"] == pytest.approx(100 / 3)
    assert res["metrics"]["structural/verify"] == 50.0
    assert res["counts"] == {"questions": 3, "answered": 2, "missing": 1}
    with pytest.raises(SeaError, match="match nothing"):
        score_gqa([answer("99", "yes")], ann)
    with pytest.raises(SeaError, match="more than once"):
        score_gqa([answer("1", "yes"), answer("1", "no")], ann)


# ----------------------------------------------------------------------------------- POPE


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("Yes", "yes"),
        ("Yes, there is a dog in the image.", "yes"),
        ("No", "no"),
        ("No, there is not.", "no"),
        ("There is no dog.", "no"),
        ("It is not there", "no"),
        ("Yes. No.", "yes"),  # only the first sentence counts
        ("no,", "no"),  # commas dropped before splitting
        ("NO", "yes"),  # only "No", "no" and "not" count, exactly
        ("Nope", "yes"),
        ("I don't know", "yes"),
        ("", "yes"),
    ],
)
def test_pope_parsing(text: str, parsed: str):
    assert pope_answer(text) == parsed


def test_pope_metrics_and_division_by_zero():
    m = pope_metrics(["yes", "yes", "no", "no"], ["yes", "no", "no", "yes"])
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == m["yes_ratio"] == 50.0
    none_yes = pope_metrics(["no", "no"], ["yes", "no"])
    assert none_yes["precision"] == none_yes["f1"] == none_yes["yes_ratio"] == 0.0
    assert none_yes["accuracy"] == 50.0
    no_pos = pope_metrics(["yes", "no"], ["no", "no"])
    assert no_pos["recall"] == 0.0 and no_pos["f1"] == 0.0


def _pope_files(tmp_path: Path) -> tuple[Path, Path]:
    sfx = "\nAnswer the question using a single word or phrase."
    qs, labels = [], {"random": [], "adversarial": []}
    qid = 0
    for cat in ("random", "adversarial"):
        for img, label in (("a.jpg", "yes"), ("a.jpg", "no"), ("b.jpg", "yes"), ("b.jpg", "no")):
            qid += 1
            qs.append({"question_id": qid, "image": img, "text": "Is there a cat?" + sfx, "category": cat})
            labels[cat].append({"question_id": qid, "image": img, "text": "Is there a cat?", "label": label})
    qfile = write_jsonl(tmp_path / "llava_pope_test.jsonl", qs)
    for cat, rows in labels.items():
        write_jsonl(tmp_path / "coco" / f"coco_pope_{cat}.json", rows)
    return qfile, tmp_path / "coco"


def test_pope_per_category_and_order_independent(tmp_path: Path):
    qfile, coco = _pope_files(tmp_path)
    texts = ["Yes", "No", "Yes", "Yes", "no", "no", "no", "no"]
    answers = [answer(i + 1, t) for i, t in enumerate(texts)]
    res = score_pope(answers, coco, qfile)
    assert res["splits"]["random"]["accuracy"] == 75.0
    assert res["splits"]["random"]["f1"] == pytest.approx(100 * 2 * (2 / 3) / (2 / 3 + 1))
    assert res["splits"]["adversarial"]["precision"] == 0.0  # no "yes": defined as 0
    assert res["metrics"]["accuracy"] == 62.5
    assert score_pope(list(reversed(answers)), coco, qfile) == res
    with pytest.raises(SeaError, match="no answer"):
        score_pope(answers[:-1], coco, qfile)
    partial = score_pope(answers[:4], coco, qfile, allow_missing=True)
    assert list(partial["splits"]) == ["random"]


def test_pope_mismatching_annotation_is_an_error(tmp_path: Path):
    qfile, coco = _pope_files(tmp_path)
    answers = [answer(i + 1, "yes") for i in range(8)]
    rows = [json.loads(x) for x in (coco / "coco_pope_random.json").read_text().splitlines()]
    write_jsonl(coco / "coco_pope_random.json", rows[:3])
    with pytest.raises(SeaError, match="does not match"):
        score_pope(answers, coco, qfile)
    rows[0]["image"] = "zzz.jpg"
    write_jsonl(coco / "coco_pope_random.json", rows)
    with pytest.raises(SeaError, match="other images"):
        score_pope(answers, coco, qfile)


# ----------------------------------------------------------------------------------- MME


@pytest.mark.parametrize(
    ("pred", "parsed"),
    [
        ("Yes", "yes"),
        ("no", "no"),
        ("Yes, it is.", "yes"),
        ("No.", "no"),
        ("not sure", "no"),  # "no" in "not "
        ("eyes", "yes"),  # "yes" in "eyes"
        ("I think yes", "other"),  # only the first four characters count
        ("Nope", "no"),
        ("yes\tno", "yes"),  # a tab or newline is just text here
        ("\nyes", "yes"),
        ("", "other"),
    ],
)
def test_mme_parsing(pred: str, parsed: str):
    assert mme_parse(pred) == parsed


def _mme_world(tmp_path: Path) -> Path:
    gt = tmp_path / "ground_truth"
    gt.mkdir()
    sfx = " Please answer yes or no."
    (gt / "existence.txt").write_text(
        f"i1.png\tIs there a cat?{sfx}\tYes\ni1.png\tIs there a dog?{sfx}\tNo\n"
        f"i2.png\tIs there a cat?{sfx}\tYes\ni2.png\tIs there a dog?{sfx}\tNo\n"
    )
    (gt / "code_reasoning.txt").write_text(
        f"c1.png\tDoes it print 1?{sfx}\tYes\nc1.png\tDoes it print 2?{sfx}\tNo\n"
    )
    return gt


def test_mme_scores_acc_plus_and_groups(tmp_path: Path):
    gt = _mme_world(tmp_path)
    sfx = " Please answer yes or no."
    answers = [
        answer("existence/i1.png", "Yes", "Is there a cat?" + sfx),
        answer("existence/i1.png", "No", "Is there a dog?" + sfx),
        answer("existence/i2.png", "Yes", "Is there a cat?" + sfx),
        # LLaVA's short-answer suffix instead of the yes/no one: converted like convert_answer_to_mme.py
        answer(
            "existence/i2.png", "yes", "Is there a dog?\nAnswer the question using a single word or phrase."
        ),
        answer("code_reasoning/c1.png", "maybe", "Does it print 1?" + sfx),
        answer("code_reasoning/c1.png", "hmm", "Does it print 2?" + sfx),
    ]
    res = score_mme(answers, gt)
    assert res["metrics"]["existence"] == pytest.approx(75 + 50)  # acc 3/4, acc+ 1/2
    assert res["metrics"]["perception"] == pytest.approx(125)
    assert res["metrics"]["code_reasoning"] == 0.0  # all "other": defined, no crash
    assert res["metrics"]["cognition"] == 0.0
    assert res["counts"]["other"] == 2
    assert score_mme(list(reversed(answers)), gt) == res
    with pytest.raises(SeaError, match="no answer"):
        score_mme(answers[:-1], gt)
    assert score_mme(answers[:-1], gt, allow_missing=True)["counts"]["missing"] == 1
    with pytest.raises(SeaError, match="more than once"):
        score_mme(answers + answers[:1], gt)
    with pytest.raises(SeaError, match="match no ground-truth"):
        score_mme([answer("existence/i9.png", "Yes", "Is there a cat?" + sfx)], gt)


def test_mme_release_layout_and_double_space(tmp_path: Path):
    root = tmp_path / "MME_Benchmark_release_version"
    (root / "count" / "images").mkdir(parents=True)
    (root / "count" / "questions_answers_YN").mkdir()
    (root / "count" / "questions_answers_YN" / "0001.txt").write_text(
        "Are there two cats?  Please answer yes or no.\tYes\n"
        "Are there three cats? Please answer yes or no.\tNo\n"
    )
    (root / "OCR").mkdir()
    (root / "OCR" / "0002.txt").write_text(
        "Is it STOP? Please answer yes or no.\tYes\nIs it GO? Please answer yes or no.\tNo\n"
    )
    answers = [
        answer("count/0001.png", "Yes", "Are there two cats?"),  # needs the two-space variant
        answer("count/0001.png", "No", "Are there three cats?"),
        answer("OCR/0002.jpg", "No", "Is it STOP? Please answer yes or no."),
        answer("OCR/0002.jpg", "No", "Is it GO? Please answer yes or no."),
    ]
    res = score_mme(answers, root)
    assert res["metrics"]["count"] == 200.0
    assert res["metrics"]["OCR"] == 50.0
    assert res["metrics"]["perception"] == 250.0
    assert "cognition" not in res["metrics"]


def test_mme_ground_truth_must_pair_images(tmp_path: Path):
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "color.txt").write_text("a.png\tQ1\tYes\nb.png\tQ2\tNo\n")
    with pytest.raises(SeaError, match="different images"):
        score_mme([], gt)


# ----------------------------------------------------------------------------------- ScienceQA


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("A", "A"),
        ("B. Because it floats.", "B"),
        ("The answer is C.", "C"),
        ("I think so. The answer is D!", "D"),  # "." in the regex is any character
        ("The answer is C. The answer is D.", "FAILED"),  # more than one match
        ("b", "FAILED"),
        (" A", "FAILED"),  # exact letter only
        ("A.", "FAILED"),  # needs "X. " with the space
        ("(A)", "FAILED"),
    ],
)
def test_sqa_letter_parsing(text: str, letter: str):
    assert sqa_letter(text) == letter


def _sqa_folder(tmp_path: Path) -> Path:
    problems = {
        "1": {"choices": ["x", "y"], "answer": 0, "image": "image.png"},
        "2": {"choices": ["x", "y", "z"], "answer": 2, "image": None},
        "3": {"choices": ["x", "y"], "answer": 1, "image": "image.png"},
        "4": {"choices": ["x", "y"], "answer": 1, "image": "image.png"},
        "9": {"choices": ["x"], "answer": 0, "image": None},
    }
    (tmp_path / "problems.json").write_text(json.dumps(problems))
    (tmp_path / "pid_splits.json").write_text(json.dumps({"test": ["1", "2", "3", "4"], "val": ["9"]}))
    return tmp_path


def test_sqa_accuracy_and_img_accuracy(tmp_path: Path):
    folder = _sqa_folder(tmp_path)
    answers = [
        answer("1", "A", "<image>\nQ\nA. x\nB. y"),
        answer("2", "The answer is C.", "Q\nA. x\nB. y\nC. z"),
        answer("3", "C", "<image>\nQ"),  # a letter beyond the choices is wrong
    ]
    with pytest.raises(SeaError, match="1 of 4 question"):
        score_sqa(answers, folder)
    res = score_sqa(answers, folder, allow_missing=True)
    assert res["metrics"]["accuracy"] == 50.0  # 2 of 4; problem 4 has no answer: FAILED
    assert res["metrics"]["img_accuracy"] == pytest.approx(100 / 3)  # 1 of the 3 image problems
    assert res["counts"]["missing"] == 1 and res["counts"]["failed"] == 1
    val = score_sqa([answer("9", "A", "Q")], folder / "problems.json", split="val")
    assert val["metrics"]["accuracy"] == 100


def test_sqa_ignores_other_split_and_unknown_ids_like_the_reference(tmp_path: Path):
    folder = _sqa_folder(tmp_path)
    right = [answer("1", "A", "<image>\nQ"), answer("2", "C", "Q"), answer("3", "B", "<image>\nQ")]
    extra = [
        answer("9", "A", "Q"),  # a val problem: eval_science_qa.py never looks it up
        answer("77", "B", "Q"),  # in no split
        answer("4", "A", "<image>\nQ"),  # wrong, then answered again: the last line wins
        answer("4", "B", "<image>\nQ"),
    ]
    res = score_sqa(right + extra, folder)
    assert res["metrics"] == {"accuracy": 100.0, "img_accuracy": 100.0}
    assert {
        k: res["counts"][k] for k in ("questions", "answered", "other_split", "unknown", "duplicates")
    } == {"questions": 4, "answered": 4, "other_split": 1, "unknown": 1, "duplicates": 1}
    with pytest.raises(SeaError, match=r"strict.*1 answer id\(s\) of splits other than 'test', 1 not in"):
        score_sqa(right + extra, folder, strict=True)
    assert score_sqa(right + extra[2:3], folder, strict=True)["counts"]["duplicates"] == 0


# ----------------------------------------------------------------------------------- MMBench


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("A", "A"),
        ("B.", "B"),
        ("(C)", "C"),
        ("The answer is D", "D"),
        ("Answer: C", "C"),
        ("C) red", "C"),
        ("A cat sits on the mat", None),  # "A" may be a quantifier in a longer answer
        ("A or B", None),  # two letters
        ("E", "E"),  # E is accepted (then wrong on 4 options)
        ("Failed to obtain answer via API", None),
        ("red", None),
    ],
)
def test_mmbench_can_infer_option(text: str, letter: str | None):
    assert can_infer_option(text) == letter


def test_mmbench_can_infer_text():
    choices = {"A": "Red", "B": "Blue square", "C": "blue"}
    assert can_infer_text("It is red.", choices) == "A"
    assert can_infer_text("a blue square", choices) is None  # "blue" and "blue square" both occur
    assert infer_letter("A red one", {"A": "green", "B": "red"}) == ("A", "option")  # three words
    assert infer_letter("A red one for sure", {"A": "green", "B": "red"}) == ("B", "text")  # a quantifier?


def test_mmbench_is_none_like_pandas_and_llava():
    assert all(
        is_none(v) for v in ("", "nan", "NaN", "None", "NONE", "N/A", "NA", "null", None, float("nan"))
    )
    assert not any(is_none(v) for v in ("0", "no", "n", "A"))


def _mmbench_tsv(tmp_path: Path) -> Path:
    header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]
    rows = [
        [0, "Color?", "nan", "red", "blue", "", "", "A", "color", "l2", "aGk="],
        [1, "Shape?", "Look.", "star", "circle", "square", "", "C", "shape (x)", "l2", "aGk="],
        [1000000, "Color?", "nan", "blue", "red", "", "", "B", "color", "l2", "0"],
        [1000001, "Shape?", "Look.", "circle", "square", "star", "", "B", "shape (x)", "l2", "1"],
    ]
    path = tmp_path / "mmbench_dev.tsv"
    path.write_text("\n".join("\t".join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def test_mmbench_circular(tmp_path: Path):
    tsv = _mmbench_tsv(tmp_path)
    rows = read_mmbench_tsv(tsv)
    assert rows[3]["image"] == "aGk=" and rows[3]["index"] == 1000001  # short image refs resolved
    answers = [answer(0, "A"), answer(1, "C"), answer(1000000, "B. red"), answer(1000001, "The answer is A")]
    res = score_mmbench(answers, tsv)
    assert res["metrics"]["accuracy"] == 50.0  # question 1 fails on its shifted copy
    assert res["metrics"]["vanilla_accuracy"] == 100.0
    assert res["details"]["category"] == {"color": 100.0, "shape (x)": 0.0}
    unparsed = [answer(0, "A"), answer(1, "C"), answer(1000000, "dunno"), answer(1000001, "square")]
    res = score_mmbench(unparsed, tsv)
    assert res["metrics"]["accuracy"] == 50.0
    assert {k: v for k, v in res["counts"].items() if k.startswith("path/")} == {
        "path/option": 2, "path/text": 1, "path/mcq_extract": 0, "path/unparsed": 1,
    }  # fmt: skip
    with pytest.raises(SeaError, match="no answer"):
        score_mmbench(answers[:3], tsv)
    assert score_mmbench(answers[:3], tsv, allow_missing=True)["metrics"]["accuracy"] == 50.0
    with pytest.raises(SeaError, match="all-rounds"):
        score_mmbench([answer(0, "A", round_id=1)], tsv)


def test_mmbench_falls_back_to_mcq_extract_like_lmms_eval_static(tmp_path: Path):
    tsv = _mmbench_tsv(tmp_path)
    # Neither can_infer_option nor the option texts read these; lmms-eval's static mode asks mcq_extract.
    texts = {0: "**A**", 1: "answer:C", 1000000: "\\boxed{B}", 1000001: "<answer>b</answer>"}
    for text in texts.values():
        assert infer_letter(text, {"A": "red", "B": "blue", "C": "star"})[1] == "mcq_extract"
    res = score_mmbench([answer(i, t) for i, t in texts.items()], tsv)
    assert res["metrics"] == {"accuracy": 100.0, "vanilla_accuracy": 100.0}
    assert res["counts"]["path/mcq_extract"] == 4 and res["counts"]["path/unparsed"] == 0
    assert res["details"] == {"category": {"color": 100.0, "shape (x)": 100.0}, "l2-category": {"l2": 100.0}}
    # The extractor abstains on two letters and on a letter the row does not offer (row 0: A, B).
    ambiguous = texts | {1000001: "**A** or **B**", 0: "answer:D"}
    res = score_mmbench([answer(i, t) for i, t in ambiguous.items()], tsv)
    assert res["metrics"] == {"accuracy": 0.0, "vanilla_accuracy": 50.0}
    assert res["counts"]["path/mcq_extract"] == 2 and res["counts"]["path/unparsed"] == 2
    assert res["details"]["category"] == {"color": 0.0, "shape (x)": 0.0}


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"), ("(C)", "C"), ("The answer is D.", "D"), ("**B**", "B"), ("Option B is correct", "B"),
        ("B because it is red", "B"), ("\\boxed{\\text{C}}", "C"), ("答案是C", "C"),
        ("Answer: B. Final answer: Z", ""), ("A or B", ""), ("A, B", ""), ("B.com", ""), ("a cat", ""),
        ("<answer>A <answer>B</answer>", ""), ("<answer>A</answer> <answer>B", "B"), ("", ""),
    ],
)  # fmt: skip
def test_mcq_extract_cases(text: str, letter: str):
    from sea.eval.mcq_extract import extract_mcq_answer

    assert extract_mcq_answer(text, ["A", "B", "C", "D"]) == letter


# ----------------------------------------------------------------------------------- SEED


def test_seed_exact_match_per_type(tmp_path: Path):
    ann = tmp_path / "SEED-Bench.json"
    data = {
        "questions": [
            {"question_id": "1", "answer": "A", "question_type_id": 1, "data_type": "image"},
            {"question_id": "2", "answer": "B", "question_type_id": 1, "data_type": "image"},
            {"question_id": "3", "answer": "C", "question_type_id": 2, "data_type": "video"},
        ],
        "question_type": {"Scene Understanding": 1, "Action Recognition": 2},
    }
    ann.write_text(json.dumps(data))
    partial = [answer(1, "A"), answer(2, "B.")]  # exact match: "B." is wrong; 3 missing
    with pytest.raises(SeaError, match="1 of 3 question"):
        score_seed(partial, ann)
    res = score_seed(partial, ann, allow_missing=True)
    assert res["metrics"]["accuracy"] == pytest.approx(100 / 3)
    assert res["metrics"]["type/Scene Understanding"] == 50.0
    assert res["metrics"]["video_accuracy"] == 0.0
    assert res["counts"]["missing"] == 1


def test_registry():
    assert get_scorer("scienceqa") is score_sqa
    with pytest.raises(SeaError, match="unknown scorer"):
        score("nope", [], None)
