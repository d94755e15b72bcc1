"""Small builders shared by the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sea.config import CONF_DIR


def report_settings(**report):
    """`report` settings: conf/report/default.yaml with `report`'s keys (whole sub-sections) replacing its."""
    from sea.eval.stats import Settings

    conf = yaml.safe_load((CONF_DIR / "report" / "default.yaml").read_text(encoding="utf-8"))
    return Settings.from_config({**conf, **report})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def answer(qid, text: str, prompt: str = "", **extra) -> dict:
    """A LLaVA answer record."""
    return {
        "question_id": qid,
        "prompt": prompt,
        "text": text,
        "answer_id": "x",
        "model_id": "m",
        "metadata": {},
    } | extra
