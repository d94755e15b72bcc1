"""The study document: both comparisons, the dose-response table and plot, the researcher's text kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from sea.config import compose
from sea.eval.study import MARKER, PLOT, write_study_doc
from sea.stages.report import write_report
from tests.eval.test_compare import SEEDS, SETTINGS, make_tree, write_label_json


def test_study_doc_has_both_comparisons_the_dose_table_and_keeps_the_reading(tmp_path: Path) -> None:
    paths = make_tree(tmp_path / "tree")
    write_label_json(paths)
    for seed in SEEDS:  # two oracle arms that score like `sea`
        for arm in ("sea_p30", "sea_oracle"):
            for kind in ("evaluate", "align"):
                shutil.copytree(paths[kind] / f"seed{seed}" / "sea", paths[kind] / f"seed{seed}" / arm)
    reports = {"comparison": tmp_path / "main", "dose": tmp_path / "dose"}
    write_report(
        reports["comparison"],
        paths["evaluate"],
        paths["align"],
        ["baseline", "sea"],
        SEEDS,
        settings=SETTINGS,
    )
    write_report(
        reports["dose"],
        paths["evaluate"],
        paths["align"],
        ["baseline", "sea_p30", "sea_oracle"],
        SEEDS,
        settings=SETTINGS,
    )
    cfg = compose([f"paths.root={tmp_path}", f"paths.metrics={paths['metrics']}", "tracking=none"])
    doc = tmp_path / "docs" / "study.md"

    write_study_doc(doc, cfg, reports, SEEDS, SEEDS, seconds=90.0, command="make study")
    text = doc.read_text()
    assert "make study" in text and "1.5 min" in text
    assert (doc.parent / PLOT).stat().st_size > 1000
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| sea")}
    assert "| 0.30 |" in rows["sea_p30"] and "| 1.00 |" in rows["sea_oracle"]
    assert "| 0.42 |" in rows["sea"]  # the CLIP arm at its measured label precision (label.json)
    assert text.count("average relative gain") >= 2  # each comparison's own summary

    doc.write_text(text.replace("(to be written)", "SEA helps when the labels are right."))
    write_study_doc(doc, cfg, reports, SEEDS, SEEDS, seconds=60.0, command="make study")
    again = doc.read_text()
    assert "1.0 min" in again and again.split(MARKER, 1)[1].strip().endswith(
        "SEA helps when the labels are right."
    )
