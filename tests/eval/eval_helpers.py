"""Small builders shared by the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path


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
