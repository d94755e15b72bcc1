"""The shapes world generator (sea.world): determinism, ground truth, LLaVA formats, eval files and
config checks."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from sea.world import evalsets, generate_world, language, patch_objects_from_mask
from sea.world.config import COUNT_WORDS, RGB
from sea.world.render import png_bytes

REPO = Path(__file__).resolve().parents[1]
SUFFIXES = (language.SHORT_SUFFIX, language.MC_SUFFIX)


def small_world(**overrides) -> dict:
    """The default data.world config with small sizes."""
    wcfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf/data/world.yaml").world, resolve=True)
    wcfg.update(n_pretrain=40, n_instruct=30, n_eval=24, corpus_sentences=200)
    wcfg.update(overrides)
    return wcfg


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("world")
    wcfg = small_world()
    metrics = generate_world(wcfg, 0, out)
    return out, wcfg, metrics


@pytest.fixture(scope="module")
def truth(world) -> dict[str, dict[str, dict]]:
    """split -> image id -> ground-truth row."""
    out, _, _ = world
    return {
        split: {r["id"]: r for r in read_jsonl(out / "ground_truth" / f"{split}.jsonl")}
        for split in ("pretrain", "instruct", "eval")
    }


# ----------------------------------------------------------------------------- helpers: answer checking


def template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    pattern = re.sub(r"\\?\{(\w+)\\?\}", lambda m: f"(?P<{m.group(1)}>.+?)", pattern)
    return re.compile("^" + pattern + "$")


def match_any(templates, text: str) -> dict[str, str] | None:
    """Fields of the first template that matches, trying the ones with the most fixed text first."""
    for tpl in sorted(templates, key=lambda t: len(re.sub(r"\{\w+\}", "", t)), reverse=True):
        m = template_regex(tpl).match(text)
        if m:
            return m.groupdict()
    return None


def resolve(ref: str, objects: list[dict]) -> list[dict]:
    """Objects a reference ('star', 'red object', 'red star') names."""
    words = ref.split()
    if len(words) == 2 and words[1] == "object":
        return [o for o in objects if o["color"] == words[0]]
    if len(words) == 2:
        return [o for o in objects if o["color"] == words[0] and o["shape"] == words[1]]
    return [o for o in objects if o["shape"] == words[0]]


def unique(ref: str, objects: list[dict]) -> dict:
    found = resolve(ref, objects)
    assert len(found) == 1, f"ambiguous or dangling reference {ref!r} in {objects}"
    return found[0]


def strip_article(phrase: str) -> str:
    return re.sub(r"^(a|an) ", "", phrase)


def relation(a: dict, b: dict) -> set[str]:
    rel = set()
    if a["bbox"][2] <= b["bbox"][0]:
        rel.add("left")
    if b["bbox"][2] <= a["bbox"][0]:
        rel.add("right")
    if a["bbox"][3] <= b["bbox"][1]:
        rel.add("above")
    if b["bbox"][3] <= a["bbox"][1]:
        rel.add("below")
    return rel


def true_short_answer(question: str, objects: list[dict], shapes: list[str]) -> str:
    """Re-derive a generated question's short answer from the ground truth alone."""
    if (m := match_any(language.COLOR_Q, question)) is not None:
        return unique(m["ref"], objects)["color"]
    if (m := match_any(language.SHAPE_Q, question)) is not None:
        return unique(m["ref"], objects)["shape"]
    if match_any(language.COUNT_ALL_Q, question) is not None:
        return str(len(objects))
    if (m := match_any(language.COUNT_COLOR_Q, question)) is not None:
        return str(sum(o["color"] == m["color"] for o in objects))
    if (m := match_any(language.COUNT_SHAPE_Q, question)) is not None:
        shape = {language.plural(s): s for s in shapes}[m["shapes"]]
        return str(sum(o["shape"] == shape for o in objects))
    if (m := match_any(language.EXISTENCE_Q, question)) is not None:
        return "yes" if resolve(strip_article(m["a_obj"]), objects) else "no"
    if (m := match_any(language.POSITION_Q, question)) is not None:
        return unique(m["ref"], objects)["position"]
    if (m := match_any(language.RELATION_X_Q + language.RELATION_Y_Q, question)) is not None:
        rel = relation(unique(m["a"], objects), unique(m["b"], objects))
        axis = {"left", "right"} if match_any(language.RELATION_X_Q, question) else {"above", "below"}
        assert len(rel & axis) == 1, question
        return (rel & axis).pop()
    raise AssertionError(f"question matches no known template: {question!r}")


# ----------------------------------------------------------------------------- (1) determinism


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    wcfg = small_world(n_pretrain=12, n_instruct=10, n_eval=8, corpus_sentences=50)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    ma = generate_world(wcfg, 7, a)
    mb = generate_world(wcfg, 7, b)
    generate_world(wcfg, 8, c)
    ha, hb, hc = tree_hashes(a), tree_hashes(b), tree_hashes(c)
    assert ma == mb
    assert len(ha) > 12 + 10 + 8 and ha == hb
    images = [k for k in ha if k.startswith(("images/", "eval/images/"))]
    assert len(images) == 30
    assert sum(ha[k] != hc.get(k) for k in images) == len(images), "another seed must change every image"
    assert ha["pretrain.json"] != hc["pretrain.json"]


def test_metrics_are_flat_numbers(world):
    out, wcfg, metrics = world
    assert metrics and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["pretrain_images"] == wcfg["n_pretrain"]
    assert metrics["instruct_text_only"] >= 1
    summary = json.loads((out / "world.json").read_text())
    assert summary["counts"] == metrics
    assert summary["vocabulary"]["shapes"] == wcfg["shapes"]
    assert set(summary["vocabulary"]["rgb"]) == set(wcfg["colors"]) | set(wcfg["backgrounds"])
    assert len((out / "corpus.txt").read_text().splitlines()) == wcfg["corpus_sentences"]


# ----------------------------------------------------------------------------- (2) ground truth


def test_patch_objects_from_mask_rule():
    mask = np.zeros((4, 6), dtype=np.uint8)
    mask[0:2, 0:2] = 1  # patch (0,0): fully object 1
    mask[0, 2:4] = 2  # patch (0,1): half object 2 -> meets coverage 0.5
    mask[0, 4] = 3  # patch (0,2): a quarter of object 3 -> background
    mask[2, 0:2] = 1  # patch (1,0): two pixels of 1 ...
    mask[3, 0] = 2  # ... one of 2: object 1 covers most
    got = patch_objects_from_mask(mask, 2, 0.5)
    assert got.tolist() == [[1, 2, 0], [1, 0, 0]]
    assert patch_objects_from_mask(mask, 2, 0.75).tolist() == [[1, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="divisible"):
        patch_objects_from_mask(mask, 4, 0.5)


def test_png_encoder_round_trips_through_pil():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(16, 24), dtype=np.uint8)
    for array, mode in ((rgb, "RGB"), (gray, "L")):
        data = png_bytes(array)
        Image.open(io.BytesIO(data)).verify()
        image = Image.open(io.BytesIO(data))
        assert image.mode == mode and np.array_equal(np.asarray(image), array)
    with pytest.raises(ValueError, match="shape"):
        png_bytes(np.zeros((4, 4, 4), dtype=np.uint8))


def test_ground_truth_matches_masks_and_images(world, truth):
    out, wcfg, _ = world
    rgb = {
        k: np.array(v) for k, v in json.loads((out / "world.json").read_text())["vocabulary"]["rgb"].items()
    }
    noise = json.loads((out / "world.json").read_text())["config"]
    obj_tol, bg_tol = noise["object_noise"], noise["background_noise"]
    grid = wcfg["image_size"] // wcfg["patch_size"]
    n_same_color = 0
    for split, rows in truth.items():
        assert len(rows) == wcfg[f"n_{split}"]
        for row in rows.values():
            image = np.asarray(Image.open(out / row["image"]))
            mask = np.asarray(Image.open(out / row["mask"]))
            assert image.shape == (wcfg["image_size"], wcfg["image_size"], 3) and image.dtype == np.uint8
            assert Image.open(out / row["mask"]).mode == "L"
            assert row["grid"] == grid and row["patch_size"] == wcfg["patch_size"]
            expected = patch_objects_from_mask(mask, wcfg["patch_size"], wcfg["patch_coverage"])
            assert np.array_equal(np.array(row["patch_objects"]), expected), row["id"]
            objects = row["objects"]
            assert wcfg["min_objects"] - 1 <= len(objects) <= wcfg["max_objects"]
            assert len(objects) >= 1
            assert sorted(np.unique(mask).tolist()) == list(range(len(objects) + 1))
            assert len({(o["color"], o["shape"]) for o in objects}) == len(objects)
            n_same_color += len(objects) >= 2 and len({o["color"] for o in objects}) == 1
            bg = mask == 0
            assert np.abs(image[bg].astype(int) - rgb[row["background"]]).max() <= bg_tol
            assert image[bg].astype(int).std() > 0, "background must carry some texture"
            for o in objects:
                where = mask == o["index"]
                assert np.abs(image[where].astype(int) - rgb[o["color"]]).max() <= obj_tol, (row["id"], o)
                ys, xs = np.nonzero(where)
                assert o["bbox"] == [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                assert o["position"] in language.POSITION_PHRASES
                assert (
                    o["size"] in wcfg["sizes"]
                    and o["shape"] in wcfg["shapes"]
                    and o["color"] in wcfg["colors"]
                )
            for a in objects:
                for b in objects:
                    if a["index"] < b["index"]:
                        assert relation(a, b), f"objects {a} and {b} overlap in {row['id']}"
    assert n_same_color > 0, "some images must hold several objects of one colour"


# ----------------------------------------------------------------------------- (3) LLaVA formats


def check_alternating(conv: list[dict]) -> None:
    assert conv and len(conv) % 2 == 0
    for i, turn in enumerate(conv):
        assert set(turn) == {"from", "value"}
        assert turn["from"] == ("human" if i % 2 == 0 else "gpt")
        assert isinstance(turn["value"], str) and turn["value"].strip()


def test_pretrain_json_has_llava_558k_shape(world, truth):
    out, wcfg, _ = world
    data = json.loads((out / "pretrain.json").read_text())
    assert len(data) == wcfg["n_pretrain"]
    positions = set()
    for s in data:
        assert set(s) == {"id", "image", "conversations"}
        assert s["image"] == f"images/pretrain/{s['id']}.png" and (out / s["image"]).is_file()
        conv = s["conversations"]
        check_alternating(conv)
        assert len(conv) == 2
        human, caption = conv[0]["value"], conv[1]["value"]
        assert human.count("<image>") == 1 and "<image>" not in caption
        positions.add("before" if human.startswith("<image>\n") else "after")
        assert human.startswith("<image>\n") or human.endswith("\n<image>")
        for o in truth["pretrain"][s["id"]]["objects"]:
            assert o["color"] in caption and o["shape"] in caption, (caption, o)
    assert positions == {"before", "after"}


def test_instruct_json_has_mix665k_shape(world, truth):
    out, wcfg, metrics = world
    data = json.loads((out / "instruct.json").read_text())
    with_image = [s for s in data if "image" in s]
    text_only = [s for s in data if "image" not in s]
    assert len(with_image) == wcfg["n_instruct"]
    assert len(text_only) == metrics["instruct_text_only"] >= 1
    assert len({s["id"] for s in data}) == len(data)
    turn_counts = Counter()
    for s in with_image:
        assert set(s) == {"id", "image", "conversations"} and (out / s["image"]).is_file()
        conv = s["conversations"]
        check_alternating(conv)
        assert 1 <= len(conv) // 2 <= wcfg["max_turns"]
        turn_counts[len(conv) // 2] += 1
        assert conv[0]["value"].startswith("<image>\n") and conv[0]["value"].count("<image>") == 1
        assert all("<image>" not in t["value"] for t in conv[1:])
    assert len(turn_counts) > 1, "conversations should have varying numbers of turns"
    for s in text_only:
        assert set(s) == {"id", "conversations"}
        check_alternating(s["conversations"])
        assert all("<image>" not in t["value"] for t in s["conversations"])


def test_instruct_answers_agree_with_ground_truth(world, truth):
    """Every short-answer and multiple-choice turn about an image is unambiguous and correct."""
    out, wcfg, _ = world
    data = json.loads((out / "instruct.json").read_text())
    checked = Counter()
    for s in data:
        if "image" not in s:
            continue
        objects = truth["instruct"][s["id"]]["objects"]
        conv = s["conversations"]
        for q, a in zip(conv[0::2], conv[1::2], strict=True):
            text = q["value"].removeprefix("<image>\n")
            if text.endswith(language.MC_SUFFIX):
                lines = text.removesuffix(language.MC_SUFFIX).split("\n")
                options = {line[0]: line[3:] for line in lines[1:]}
                assert a["value"] in options
                assert options[a["value"]] == true_short_answer(
                    lines[0], objects, wcfg["shapes"]
                ).lower() or options[a["value"]] == true_short_answer(lines[0], objects, wcfg["shapes"])
                checked["mc"] += 1
            elif text.endswith(language.SHORT_SUFFIX):
                question = text.removesuffix(language.SHORT_SUFFIX)
                assert a["value"].lower() == true_short_answer(question, objects, wcfg["shapes"]).lower(), (
                    question
                )
                checked["short"] += 1
            else:
                true_short_answer(text, objects, wcfg["shapes"])  # unambiguous (raises otherwise)
                checked["long"] += 1
    assert checked["mc"] > 0 and checked["short"] > 0 and checked["long"] > 0


# ----------------------------------------------------------------------------- (4) eval files


def test_gqa_answers_agree_with_ground_truth(world, truth):
    out, wcfg, metrics = world
    questions = read_jsonl(out / "eval/gqa/questions.jsonl")
    annotations = json.loads((out / "eval/gqa/testdev_balanced_questions.json").read_text())
    assert len(questions) == len(annotations) == metrics["gqa_questions"]
    assert len(questions) >= 1.5 * wcfg["n_eval"]
    kinds = Counter()
    for q in questions:
        assert set(q) == {"question_id", "image", "text", "category"}
        assert q["text"].endswith(language.SHORT_SUFFIX)
        assert (out / "eval/images" / q["image"]).is_file()
        ann = annotations[q["question_id"]]
        assert q["image"] == ann["imageId"] + ".png"
        assert q["text"] == ann["question"] + language.SHORT_SUFFIX
        assert len(ann["answer"].split()) == 1 and ann["answer"] == ann["answer"].lower()
        objects = truth["eval"][ann["imageId"]]["objects"]
        assert ann["answer"] == true_short_answer(ann["question"], objects, wcfg["shapes"]), ann
        kinds[ann["types"]["detailed"]] += 1
    assert len(kinds) >= 4


def test_pope_is_balanced_and_correct(world, truth):
    out, wcfg, _ = world
    questions = {q["question_id"]: q for q in read_jsonl(out / "eval/pope/llava_pope_test.jsonl")}
    assert len({q["category"] for q in questions.values()}) == 3
    pattern = re.compile(r"^Is there a (\w+) (\w+) in the image\?$")
    popular = json.loads((out / "world.json").read_text())["popular_objects"]
    for category in evalsets.POPE_CATEGORIES:
        labels = read_jsonl(out / f"eval/pope/coco/coco_pope_{category}.json")
        counts = Counter(row["label"] for row in labels)
        assert counts["yes"] == counts["no"] == wcfg["n_eval"]
        for row in labels:
            q = questions[row["question_id"]]
            assert q["category"] == category and q["image"] == row["image"]
            assert q["text"] == row["text"] + language.SHORT_SUFFIX
            color, shape = pattern.match(row["text"]).groups()
            objects = truth["eval"][row["image"].removesuffix(".png")]["objects"]
            present = any(o["color"] == color and o["shape"] == shape for o in objects)
            assert present == (row["label"] == "yes"), row
            if row["label"] == "no" and category == "adversarial":
                assert any(o["color"] == color or o["shape"] == shape for o in objects), row
            if row["label"] == "no" and category == "popular":
                absent = [p for p in popular if not any(f"{o['color']} {o['shape']}" == p for o in objects)]
                assert f"{color} {shape}" in absent[: evalsets.POPE_POPULAR_TOP]
    assert len(questions) == 3 * 2 * wcfg["n_eval"]


def test_mme_has_yes_no_pairs_per_image_and_category(world, truth):
    out, wcfg, _ = world
    questions = read_jsonl(out / "eval/mme/llava_mme.jsonl")
    by_cat = defaultdict(list)
    for q in questions:
        # LLaVA's llava_mme.jsonl asks with the short-answer suffix; the ground truth keeps MME's phrasing.
        assert q["text"].endswith(language.SHORT_SUFFIX) and language.YES_NO_SUFFIX not in q["text"]
        assert q["question_id"] == f"{q['category']}/{q['image']}"
        by_cat[q["category"]].append(q)
    assert set(by_cat) == set(evalsets.MME_CATEGORIES)
    for category, qs in by_cat.items():
        lines = (out / f"eval/mme/ground_truth/{category}.txt").read_text().splitlines()
        assert len(lines) == len(qs) == 2 * wcfg["n_eval"]
        per_image = Counter(q["image"] for q in qs)
        assert set(per_image.values()) == {2} and len(per_image) == wcfg["n_eval"]
        for k in range(0, len(lines), 2):
            (img1, q1, gt1), (img2, q2, gt2) = lines[k].split("\t"), lines[k + 1].split("\t")
            assert img1 == img2 == qs[k]["image"] == qs[k + 1]["image"]
            asked = tuple(
                q["text"].removesuffix(language.SHORT_SUFFIX) + language.YES_NO_SUFFIX for q in qs[k : k + 2]
            )
            assert (q1, q2) == asked and q1 != q2
            assert (gt1, gt2) == ("Yes", "No")
            objects = truth["eval"][img1.removesuffix(".png")]["objects"]
            for q, gt in ((q1, gt1), (q2, gt2)):
                assert (
                    mme_truth(category, q.removesuffix(language.YES_NO_SUFFIX), objects, wcfg["image_size"])
                    == gt
                ), (q, gt)


def mme_truth(category: str, q: str, objects: list[dict], size: int) -> str:
    """The yes/no answer of an MME-style question, from the ground truth alone."""
    yes = lambda cond: "Yes" if cond else "No"  # noqa: E731
    if category == "existence":
        m = match_any(evalsets.MME_EXIST, q)
        return yes(resolve(strip_article(m["a_obj"]), objects))
    if category == "count":
        m = match_any(evalsets.MME_COUNT + evalsets.MME_COUNT_ONE, q)
        n = COUNT_WORDS.index(m.get("n", "one"))
        noun = (m.get("noun") or m["noun1"] + "s").removesuffix("s").removesuffix(" object")
        matching = objects if noun == "object" else [o for o in objects if o["color"] == noun]
        return yes(len(matching) == n)
    if category == "color":
        if (m := match_any(evalsets.MME_COLOR, q)) is not None:
            return yes(unique(m["shape"], objects)["color"] == m["color"])
        m = match_any(evalsets.MME_COLOR_ANY, q)
        return yes(any(o["color"] == m["color"] for o in objects))
    for rel, templates in evalsets.MME_REL.items():
        if (m := match_any(templates, q)) is not None:
            return yes(rel in relation(unique(m["a"], objects), unique(m["b"], objects)))
    if (m := match_any((evalsets.MME_HALF,), q)) is not None:
        cx, cy = unique(m["a"], objects)["center"]
        return yes(
            {"left": cx < size / 2, "right": cx > size / 2, "top": cy < size / 2, "bottom": cy > size / 2}[
                m["half"]
            ]
        )
    if (m := re.match(r"^Is the (.+) near the center of the image\?$", q)) is not None:
        cx, cy = unique(m.group(1), objects)["center"]
        return yes(abs(cx - size / 2) < 0.05 * size and abs(cy - size / 2) < 0.05 * size)
    m = re.match(r"^Is the (.+) in the (top|bottom) (left|right) corner of the image\?$", q)
    assert m, q
    return "No" if unique(m.group(1), objects)["position"] != f"{m.group(2)} {m.group(3)}" else "Yes"


def test_mmbench_has_circular_copies_and_correct_answers(world, truth):
    out, wcfg, metrics = world
    csv.field_size_limit(sys.maxsize)
    with (out / "eval/mmbench/mmbench_dev.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    n_opt = wcfg["mmbench_options"]
    letters = "ABCDEFGHIJ"[:n_opt]
    assert list(rows[0])[:3] == ["index", "question", "hint"]
    assert {"A", "B", "C", "D", "answer", "category", "l2-category", "image"} <= set(rows[0])
    by_index = {int(r["index"]): r for r in rows}
    base = [r for r in rows if int(r["index"]) < evalsets.CIRCULAR_OFFSET]
    assert len(base) == metrics["mmbench_questions"] >= wcfg["n_eval"] * 0.9
    assert len(rows) == n_opt * len(base)
    eval_bytes = {p.name: p.read_bytes() for p in (out / "eval/images").iterdir()}
    image_of = {v: k for k, v in eval_bytes.items()}
    for r in base:
        i = int(r["index"])
        options = [r[x] for x in letters]
        assert len(set(options)) == n_opt and r["answer"] in letters
        answer_text = r[r["answer"]]
        image_name = image_of[base64.b64decode(r["image"])]
        objects = truth["eval"][image_name.removesuffix(".png")]["objects"]
        assert answer_text == true_short_answer(r["question"], objects, wcfg["shapes"]), r["question"]
        for k in range(1, n_opt):
            copy = by_index[i + k * evalsets.CIRCULAR_OFFSET]
            assert copy["question"] == r["question"] and copy["image"] == r["image"]
            assert [copy[x] for x in letters] == options[k:] + options[:k]
            assert copy[copy["answer"]] == answer_text


# ----------------------------------------------------------------------------- (5) phrasing variety


def skeleton(text: str, words: list[str]) -> str:
    """The text with every vocabulary word replaced by '_', digits too: what is left is the phrasing."""
    for w in sorted(words, key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(w)}s?\b", "_", text, flags=re.IGNORECASE)
    return re.sub(r"\d+", "_", text)


def test_captions_and_questions_use_several_phrasings(world, truth):
    out, wcfg, metrics = world
    vocab = [
        *wcfg["colors"],
        *wcfg["shapes"],
        *wcfg["backgrounds"],
        *wcfg["sizes"],
        *COUNT_WORDS,
        *language.POSITION_PHRASES.values(),
        "cross",
        "crosses",
    ]
    pretrain = json.loads((out / "pretrain.json").read_text())
    single = [
        s["conversations"][1]["value"] for s in pretrain if len(truth["pretrain"][s["id"]]["objects"]) == 1
    ]
    assert len({skeleton(c, vocab) for c in single}) > 3
    instructions = {s["conversations"][0]["value"].replace("<image>", "").strip() for s in pretrain}
    assert len(instructions) > 3
    assert metrics["caption_templates_used"] >= 6

    data = json.loads((out / "instruct.json").read_text())
    questions = [
        t["value"].removeprefix("<image>\n") for s in data if "image" in s for t in s["conversations"][0::2]
    ]
    bare = [q.split("\n")[0] for q in questions]
    color_qs = {skeleton(q, vocab) for q in bare if match_any(language.COLOR_Q, q)}
    assert len(color_qs) >= 3, color_qs
    assert len({skeleton(q, vocab) for q in bare}) > 10
    assert any(q.endswith(language.SHORT_SUFFIX) for q in questions)
    assert any(q.endswith(language.MC_SUFFIX) for q in questions)
    assert any(not q.endswith(SUFFIXES) for q in questions)


# ----------------------------------------------------------------------------- (6) bad config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 60, "patch_size": 8}, "divisible"),
        ({"shapes": ["circle", "blob"]}, "unknown shape 'blob'"),
        ({"colors": ["red", "mauve"]}, "unknown color 'mauve'"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects"),
        ({"shapes": ["circle", "square"], "max_objects": 3}, "max_objects"),
        ({"backgrounds": ["black", "red"]}, "both object colours and backgrounds"),
        ({"patch_coverage": 0}, "patch_coverage"),
        ({"sizes": {"huge": 1.5}}, "sizes.huge"),
    ],
)
def test_bad_config_raises_clear_value_error(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_world(small_world(**overrides), 0, tmp_path)
    assert not any(tmp_path.iterdir()), "nothing is written for a bad config"


def test_missing_key_and_bad_seed_raise(tmp_path):
    wcfg = small_world()
    del wcfg["max_turns"]
    with pytest.raises(ValueError, match="missing key.*max_turns"):
        generate_world(wcfg, 0, tmp_path)
    with pytest.raises(ValueError, match="seed"):
        generate_world(small_world(), -1, tmp_path)


def test_rgb_table_covers_default_vocabulary():
    wcfg = small_world()
    assert all(w in RGB for w in [*wcfg["colors"], *wcfg["backgrounds"]])
