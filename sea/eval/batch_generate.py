"""Batched generation over benchmarks: LLaVA question files in, LLaVA answer files out, greedy decoding.

- Registry: `eval.benchmarks` names entries of `data.eval_sets` (question file, image folder, annotations,
  `format`, for VQAv2 test-dev `all_questions`); `eval.registry.<name>` adds the scorer (null: scored by
  a server only), the upload file for a server (`sea.eval.uploads`) and the prompt suffix.
- Question formats, prompts as LLaVA's runners build them:
  `question_jsonl` (`model_vqa_loader` / `model_vqa`: `<image>\\n` + text, the file's text already carries
  the suffix; answer `prompt` = text), `llava_json` (`model_vqa_science`: the first human turn without
  `<image>`, `<image>\\n` in front for image problems, then the suffix; answer `prompt` = all of it),
  `mmbench_tsv` (`model_vqa_mmbench`: hint + question + "\\nA. ..." options, then the suffix; answer
  `prompt` = without the suffix, plus `round_id`, `options`, `option_char`), `vqa_questions` (the
  official VQA questions JSON, for a local VQAv2 split LLaVA ships no file for: question + the
  short-answer suffix, image `COCO_<data_subtype>_<image_id:012d>.jpg`).
- Generation: the model's conversation template, `SeaMLLM.generate` (greedy, left padding, KV cache)
  over batches, stop at the template's end-of-turn token, decode without special tokens, strip.
  Images are padded to a square with the vision tower's mean colour first (LLaVA's `pad`).
- Sharding: process r of W takes questions r, r+W, ... and writes its shard; the main process merges
  the shards back into question order. Without `accelerate launch` (or `torchrun`) it is one process.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sea.data.llava import open_image, preprocess_image
from sea.errors import SeaError
from sea.eval.answers import answer_id, make_answer, read_answers, write_answers
from sea.utils.dist import ProcessInfo, process_info  # noqa: F401 (re-exported for callers)
from sea.utils.io import read_jsonl

log = logging.getLogger(__name__)

MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
SHORT_SUFFIX = "\nAnswer the question using a single word or phrase."
FORMATS = ("question_jsonl", "llava_json", "mmbench_tsv", "vqa_questions")
# Defaults when `eval.registry` has no entry: scorer = the benchmark name, no suffix (LLaVA's question
# files carry theirs), except the multiple-choice formats which get LLaVA's --single-pred-prompt, and the
# official VQA questions, which get LLaVA's short-answer suffix.
DEFAULT_SUFFIX = {
    "question_jsonl": "",
    "llava_json": MC_SUFFIX,
    "mmbench_tsv": MC_SUFFIX,
    "vqa_questions": SHORT_SUFFIX,
}


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything needed to run and score one benchmark."""

    name: str
    format: str
    questions: Path
    image_folder: Path | None
    annotations: Path | None
    scorer: str | None  # None: no local ground truth (a server scores the upload)
    suffix: str = ""
    max_new_tokens: int | None = None
    upload: str | None = None  # upload kind (sea.eval.uploads), None: none
    all_questions: Path | None = None  # VQAv2: the full test2015 list the upload covers


@dataclass(frozen=True)
class EvalQuestion:
    """One prompt to answer: `text` is the user turn without `<image>`, `prompt` what the answer file
    records, `extra` the additional answer fields (MMBench)."""

    question_id: Any
    text: str
    prompt: str
    image: str | None = None  # file name relative to the image folder
    image_b64: str | None = None  # MMBench's inline image
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_image(self) -> bool:
        return self.image is not None or self.image_b64 is not None


# ---------------------------------------------------------------------------------------- registry


def benchmark_specs(eval_cfg: dict[str, Any], eval_sets: dict[str, Any]) -> list[BenchmarkSpec]:
    """The specs of `eval_cfg["benchmarks"]`, in that order; SeaError for an unknown benchmark or format."""
    registry = eval_cfg.get("registry") or {}
    specs = []
    for name in eval_cfg.get("benchmarks") or []:
        if name not in (eval_sets or {}):
            raise SeaError(
                f"eval.benchmarks lists {name!r}, which data.eval_sets does not define "
                f"({sorted(eval_sets or {})})"
            )
        data = eval_sets[name] or {}
        fmt = data.get("format", "question_jsonl")
        if fmt not in FORMATS:
            raise SeaError(f"data.eval_sets.{name}.format {fmt!r} is not one of {FORMATS}")
        if not data.get("questions"):
            raise SeaError(f"data.eval_sets.{name}.questions is not set")
        entry = registry.get(name) or {}
        scorer = entry.get("scorer", name)
        upload = entry.get("upload")
        if scorer is None and upload is None:
            raise SeaError(f"eval.registry.{name} has neither a scorer nor an upload: nothing would score it")
        annotations = data.get("annotations") or (
            data["questions"] if fmt == "mmbench_tsv" and scorer is not None else None
        )
        specs.append(
            BenchmarkSpec(
                name=name,
                format=fmt,
                questions=Path(data["questions"]),
                image_folder=Path(data["image_folder"]) if data.get("image_folder") else None,
                annotations=Path(annotations) if annotations else None,
                scorer=None if scorer is None else str(scorer),
                suffix=str(entry["suffix"]) if entry.get("suffix") is not None else DEFAULT_SUFFIX[fmt],
                max_new_tokens=entry.get("max_new_tokens"),
                upload=None if upload is None else str(upload),
                all_questions=Path(data["all_questions"]) if data.get("all_questions") else None,
            )
        )
    return specs


# ---------------------------------------------------------------------------------------- questions


def _question_jsonl(spec: BenchmarkSpec) -> list[EvalQuestion]:
    out = []
    for n, row in enumerate(read_jsonl(spec.questions), start=1):
        if not isinstance(row, dict) or "question_id" not in row or not isinstance(row.get("text"), str):
            raise SeaError(f"{spec.questions}: question {n} needs 'question_id' and a string 'text'")
        text = row["text"] + spec.suffix
        out.append(EvalQuestion(row["question_id"], text, text, image=row.get("image") or None))
    return out


def _llava_json(spec: BenchmarkSpec) -> list[EvalQuestion]:
    try:
        rows = json.loads(spec.questions.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SeaError(f"{spec.questions}: cannot read a LLaVA JSON list: {e}") from e
    out = []
    for n, row in enumerate(rows, start=1):
        try:
            text = str(row["conversations"][0]["value"]).replace("<image>", "").strip()
        except (KeyError, IndexError, TypeError) as e:
            raise SeaError(f"{spec.questions}: sample {n} has no first conversation turn") from e
        image = row.get("image") or None
        prompt = ("<image>\n" + text if image else text) + spec.suffix
        out.append(EvalQuestion(row["id"], text + spec.suffix, prompt, image=image))
    return out


def _mmbench_tsv(spec: BenchmarkSpec) -> list[EvalQuestion]:
    from sea.eval.scorers.mmbench import ALL_OPTIONS, mmbench_prompt, read_mmbench_tsv

    out = []
    for row in read_mmbench_tsv(spec.questions):
        question, options = mmbench_prompt(row)
        extra = {"round_id": 0, "options": options, "option_char": list(ALL_OPTIONS[: len(options)])}
        image = str(row.get("image") or "").strip() or None
        out.append(EvalQuestion(row["index"], question + spec.suffix, question, image_b64=image, extra=extra))
    return out


def _vqa_questions(spec: BenchmarkSpec) -> list[EvalQuestion]:
    from sea.utils.io import read_json

    data = read_json(spec.questions)
    rows = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SeaError(f"{spec.questions}: no 'questions' list (expected VQA's *_questions.json)")
    subtype = str(data.get("data_subtype") or "val2014")
    out = []
    for n, row in enumerate(rows, start=1):
        try:
            text = str(row["question"]) + spec.suffix
            image = f"COCO_{subtype}_{int(row['image_id']):012d}.jpg"
            out.append(EvalQuestion(row["question_id"], text, text, image=image))
        except (KeyError, TypeError, ValueError) as e:
            raise SeaError(
                f"{spec.questions}: question {n} needs 'question_id', 'question', 'image_id'"
            ) from e
    return out


LOADERS: dict[str, Callable[[BenchmarkSpec], list[EvalQuestion]]] = {
    "question_jsonl": _question_jsonl,
    "llava_json": _llava_json,
    "mmbench_tsv": _mmbench_tsv,
    "vqa_questions": _vqa_questions,
}


def load_questions(spec: BenchmarkSpec) -> list[EvalQuestion]:
    """The benchmark's questions in file order."""
    if not spec.questions.is_file():
        raise SeaError(f"{spec.name}: question file not found: {spec.questions}")
    return LOADERS[spec.format](spec)


# ---------------------------------------------------------------------------------------- images


def question_image(q: EvalQuestion, image_folder: Path | None) -> Any:
    """The question's image as RGB PIL (a file, or MMBench's base64); SeaError naming the question."""
    if q.image_b64 is None:
        return open_image(
            Path(image_folder) / q.image if image_folder is not None else Path(str(q.image)), q.question_id
        )
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(base64.b64decode(q.image_b64))).convert("RGB")
    except (OSError, ValueError, UnidentifiedImageError) as e:
        raise SeaError(f"question {q.question_id!r}: cannot open its base64 image: {e}") from e


# ---------------------------------------------------------------------------------------- generation


class AnswerGenerator:
    """Prompts, images and batched greedy decoding for one `SeaMLLM` under one template."""

    def __init__(self, model: Any, template: str, image_aspect_ratio: str = "pad") -> None:
        from sea.data.templates import end_of_turn_ids

        if model.tokenizer is None:
            raise SeaError("the model has no tokenizer; cannot build prompts")
        self.model = model
        self.tokenizer = model.tokenizer
        self.template = template
        self.eos_ids = end_of_turn_ids(self.tokenizer, template)
        self.image_aspect_ratio = image_aspect_ratio

    def prompt_ids(self, q: EvalQuestion) -> list[int]:
        from sea.data.templates import build_prompt_for_generation

        value = ("<image>\n" + q.text) if q.has_image else q.text
        try:
            return build_prompt_for_generation(
                [{"from": "human", "value": value}], self.tokenizer, self.template, has_image=q.has_image
            )
        except ValueError as e:
            raise SeaError(f"question {q.question_id!r}: cannot build the prompt: {e}") from e

    def pixels(self, q: EvalQuestion, image_folder: Path | None) -> Any:
        return preprocess_image(self.model.vision, question_image(q, image_folder), self.image_aspect_ratio)

    def answer_batch(
        self,
        questions: Sequence[EvalQuestion],
        image_folder: Path | None,
        max_new_tokens: int,
        prompt_ids: Sequence[list[int]] | None = None,
    ) -> list[str]:
        """Decoded, stripped answers for one batch."""
        ids = list(prompt_ids) if prompt_ids is not None else [self.prompt_ids(q) for q in questions]
        images = [self.pixels(q, image_folder) if q.has_image else None for q in questions]
        out = self.model.generate(
            ids,
            images=images if any(x is not None for x in images) else None,
            max_new_tokens=max_new_tokens,
            eos_token_ids=self.eos_ids,
        )
        return [self.tokenizer.decode(o, skip_special_tokens=True).strip() for o in out]

    def answer(
        self,
        questions: Sequence[EvalQuestion],
        image_folder: Path | None,
        batch_size: int,
        max_new_tokens: int,
        sort_by_length: bool = True,
        desc: str = "eval",
    ) -> list[str]:
        """Answers in the order of `questions` (batches formed after an optional sort by prompt length)."""
        from tqdm import tqdm

        if batch_size < 1:
            raise SeaError(f"eval batch_size must be >= 1, got {batch_size}")
        ids = [self.prompt_ids(q) for q in questions]
        order = (
            sorted(range(len(questions)), key=lambda i: len(ids[i]))
            if sort_by_length
            else list(range(len(ids)))
        )
        texts = [""] * len(questions)
        with tqdm(total=len(order), desc=desc, unit="q", mininterval=2.0, leave=False) as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self.answer_batch(
                    [questions[i] for i in chunk], image_folder, max_new_tokens, [ids[i] for i in chunk]
                )
                for i, text in zip(chunk, batch, strict=True):
                    texts[i] = text
                bar.update(len(chunk))
        return texts


def answer_records(
    questions: Sequence[EvalQuestion], texts: Sequence[str], model_id: str, benchmark: str
) -> list[dict[str, Any]]:
    """LLaVA answer records (deterministic answer ids)."""
    return [
        make_answer(
            q.question_id,
            q.prompt,
            t,
            model_id,
            answer_id(model_id, benchmark, q.question_id, q.prompt),
            **q.extra,
        )
        for q, t in zip(questions, texts, strict=True)
    ]


# ---------------------------------------------------------------------------------------- sharding


def shard_of(n: int, rank: int, world_size: int) -> list[int]:
    """Question positions of process `rank`: rank, rank + W, ..."""
    return list(range(rank, n, world_size))


def shard_path(shard_dir: Path, benchmark: str, rank: int, world_size: int) -> Path:
    return Path(shard_dir) / f"{benchmark}.shard{rank:03d}-of-{world_size:03d}.jsonl"


def merge_shards(paths: Sequence[Path], n: int) -> list[dict[str, Any]]:
    """Interleave the shards of `n` questions back into question order; SeaError when a shard is missing or
    has the wrong number of answers."""
    world = len(paths)
    shards = []
    for rank, p in enumerate(paths):
        if not Path(p).is_file():
            raise SeaError(f"answer shard {rank} of {world} not found: {p}")
        rows = read_answers(p)
        want = len(shard_of(n, rank, world))
        if len(rows) != want:
            raise SeaError(f"answer shard {p} has {len(rows)} answers, expected {want}")
        shards.append(rows)
    return [shards[i % world][i // world] for i in range(n)]


# ---------------------------------------------------------------------------------------- running


def run_benchmark(
    generator: AnswerGenerator,
    spec: BenchmarkSpec,
    answers_path: Path,
    *,
    model_id: str,
    batch_size: int,
    max_new_tokens: int,
    sort_by_length: bool = True,
    proc: ProcessInfo | None = None,
    shard_dir: Path | None = None,
) -> dict[str, Any]:
    """Answer one benchmark (this process's shard) and, on the main process, write the merged LLaVA
    answer file to `answers_path`. Returns timing and counts."""
    proc = proc or ProcessInfo()
    questions = load_questions(spec)
    mine = shard_of(len(questions), proc.rank, proc.world_size)
    start = time.perf_counter()
    texts = generator.answer(
        [questions[i] for i in mine],
        spec.image_folder,
        batch_size,
        spec.max_new_tokens or max_new_tokens,
        sort_by_length,
        desc=f"{model_id}/{spec.name}",
    )
    records = answer_records([questions[i] for i in mine], texts, model_id, spec.name)
    seconds = time.perf_counter() - start
    if proc.world_size == 1:
        write_answers(answers_path, records)
    else:
        if shard_dir is None:
            raise SeaError("several processes need a shared shard_dir for their answer shards")
        write_answers(shard_path(shard_dir, spec.name, proc.rank, proc.world_size), records)
        proc.barrier()
        if proc.is_main:
            paths = [shard_path(shard_dir, spec.name, r, proc.world_size) for r in range(proc.world_size)]
            write_answers(answers_path, merge_shards(paths, len(questions)))
            for p in paths:
                p.unlink(missing_ok=True)
        proc.barrier()
    log.info("%s/%s: %d questions in %.1f s on rank %d", model_id, spec.name, len(mine), seconds, proc.rank)
    return {"questions": len(questions), "seconds": seconds}


def score_benchmark(spec: BenchmarkSpec, answers_path: Path, allow_missing: bool = False) -> dict[str, Any]:
    """Score a written answer file with the spec's scorer and annotations (a spec without a scorer gets
    an empty `metrics` and `server.status: pending`); with an upload kind, also write its upload file as
    `<answers folder>/../uploads/<name><ext>` (`upload` in the result: the path relative to that
    parent)."""
    from sea.eval.scorers import score
    from sea.eval.uploads import EXTENSIONS, SERVERS, write_upload

    answers = read_answers(answers_path)
    if spec.scorer is not None:
        res = score(spec.scorer, answers, spec.annotations, spec.questions, allow_missing=allow_missing)
    else:
        res = {"benchmark": spec.upload, "metrics": {}, "counts": {}}
        res["server"] = {"name": SERVERS[str(spec.upload)], "status": "pending"}
    if spec.upload is not None:
        root = Path(answers_path).parent.parent
        path = root / "uploads" / f"{spec.name}{EXTENSIONS.get(spec.upload, '')}"
        up = write_upload(
            spec.upload, answers, path, spec.questions, all_questions=spec.all_questions,
            allow_missing=allow_missing,
        )  # fmt: skip
        res["upload"] = str(path.relative_to(root))
        if spec.scorer is None:
            res["counts"] = up["counts"]
    return res
