"""`python -m sea prepare` + `label` on a tiny dataset in LLaVA's real layout (LCS-558K's json and image
folders, the `data=llava` preset, lemmatised word list) with a tiny random CLIP: the caption-agreement,
chance and diversity numbers are written (metrics, `quality/agreement.{json,md}`, the manifest's
`variant_choice`), and the guard stops labels at chance, as a random CLIP's are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sea.__main__ import main

COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 180, 30), "yellow": (230, 220, 30)}
CAPTIONS = [
    "{c} circles on a white background",
    "Stock photo of a {c} square, isolated",
    "a man wearing a {c} hat",
    "a box containing two {c} balloons",
]


def make_llava_data(root: Path, n: int = 16) -> None:
    """`root` as LLaVA's playground/data: LLaVA-Pretrain/{blip_laion_cc_sbu_558k.json,images/} and mix665K."""
    from PIL import Image, ImageDraw

    pre = root / "LLaVA-Pretrain"
    samples = []
    for i in range(n):
        name = list(COLORS)[i % len(COLORS)]
        image = Image.new("RGB", (64, 64), (255, 255, 255))
        ImageDraw.Draw(image).ellipse((8 + i % 5, 10, 50, 52), fill=COLORS[name])
        rel = f"{i // 10:05d}/{i:09d}.jpg"
        (pre / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(pre / "images" / rel)
        caption = CAPTIONS[i % len(CAPTIONS)].format(c=name)
        samples.append(
            {
                "id": f"{i:09d}",
                "image": rel,
                "conversations": [
                    {
                        "from": "human",
                        "value": "<image>\nWrite a terse but informative summary of the picture.",
                    },
                    {"from": "gpt", "value": caption},
                ],
            }
        )
    (pre / "blip_laion_cc_sbu_558k.json").write_text(json.dumps(samples))
    text_only = {
        "id": "t0",
        "conversations": [{"from": "human", "value": "Hi."}, {"from": "gpt", "value": "Hi."}],
    }
    (root / "llava_v1_5_mix665k.json").write_text(json.dumps([text_only]))


@pytest.fixture(scope="module")
def llava_root(tmp_path_factory: pytest.TempPathFactory, clip_sizes: dict) -> Path:
    from sea.models.tiny import write_tiny_open_clip

    root = tmp_path_factory.mktemp("llava_root")
    make_llava_data(root / "data")
    write_tiny_open_clip(
        root / "backbones" / "clip", name="tiny-clip-vit", image_size=64, patch_size=8, **clip_sizes
    )
    return root


def overrides(root: Path, *extra: str) -> list[str]:
    return [
        "data=llava",
        f"data.root={root / 'data'}",
        "data.pretrain.holdout=2",
        "data.wordlist.size=40",
        "data.wordlist.min_caption_count=1",
        "eval.benchmarks=[]",
        "model/vision=tiny_clip",
        f"paths.root={root}",
        "tracking=none",
        "label.feature=auto",
        "label.sign=auto",
        "label.progress=false",
        "label.quality.ground_truth=null",
        # as the real presets (recipe=llava15): no word centring; on 14 images the auto-picked centred
        # variant of a random CLIP can clear the guard's margin by luck
        "label.center_words=false",
        *extra,
    ]


def test_label_on_llava_layout_writes_caption_agreement_and_the_guard_stops_chance_labels(
    llava_root: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["prepare", *overrides(llava_root)]) == 0
    prepared = llava_root / "prepared"
    assert json.loads((prepared / "report.json").read_text())["wordlist"]["lemmatized"] is True
    words = (prepared / "wordlist.txt").read_text().split()
    # lemmas of the caption words, no verbs: "circles" -> circle, "balloons" -> balloon
    assert {"circle", "balloon", "square", "hat", "red"} <= set(words)
    assert not {"circles", "balloons", "wearing", "containing"} & set(words)

    # a random CLIP labels at chance: the guard stops the stage before labeling, with its one line
    assert main(["label", *overrides(llava_root)]) == 1
    err = capsys.readouterr().err
    assert "no better than chance" in err and "label.guard.enabled=false" in err and "Traceback" not in err
    assert not (llava_root / "labels" / "manifest.json").exists()

    assert main(["label", *overrides(llava_root, "label.guard.enabled=false")]) == 0
    metrics = json.loads((llava_root / "metrics" / "label.json").read_text())
    assert metrics["images"] == 14 and metrics["agreement/images"] == 14.0  # 16 minus 2 held out
    for variant in ("labels", "maskclip/cosine", "maskclip/neg_cosine", "proj/cosine", "proj/neg_cosine"):
        for key in (
            "patch_agreement",
            "patch_chance",
            "image_agreement",
            "image_chance",
            "top1_entropy_bits",
        ):
            assert 0.0 <= metrics[f"agreement/{variant}/{key}"] <= 5.0
        assert 0.0 < metrics[f"agreement/{variant}/top10_share"] <= 1.0
    # every caption names a word of the list, so the chance level is measured, not zero
    assert metrics["agreement/labels/patch_chance"] > 0 or metrics["agreement/labels/image_chance"] > 0
    quality = llava_root / "labels" / "quality"
    report = json.loads((quality / "agreement.json").read_text())
    assert report["configured"] == "auto/auto" and report["variant"] in report["variants"]
    assert "patch_chance" in (quality / "agreement.md").read_text()
    manifest = json.loads((llava_root / "labels" / "manifest.json").read_text())
    assert manifest["variant_choice"]["variant"] == report["variant"]
    assert not any(k.startswith("quality/") for k in metrics)  # no ground truth on real data


def test_label_reads_captions_as_the_word_list_was_built(tmp_path: Path) -> None:
    """`label` counts caption lemmas exactly when `prepare` lemmatised W (its report.json says so)."""
    from sea.stages.label import wordlist_lemmatized

    assert not wordlist_lemmatized(tmp_path)  # no report (a hand-written word list): plain tokens
    for lemmatized in (True, False):
        (tmp_path / "report.json").write_text(json.dumps({"wordlist": {"size": 3, "lemmatized": lemmatized}}))
        assert wordlist_lemmatized(tmp_path) is lemmatized
