"""Alignment diagnostics of visual tokens against the LLM's input embeddings (sea-method.md 7.5).

- Word embeddings Psi(w): exactly the SEA loss's label embedding (Eq. 10), computed by the same
  function (`sea.training.sea_loss.label_embedding_table`: the mean input embedding of the tokens that
  `word_prefix + w` gets in context, with `align.sea`'s `word_prefix` and `tokenize`).
- Nearest-word decoding (Eq. 4): each visual token (adapter output) -> the word with the highest cosine.
  On the shapes world, scored against the per-patch ground truth: an object patch is right when its
  word is the object's colour or shape; background patches are reported apart (right when the word is
  the background's colour name).
- Modality gap D (Eq. 5): the mean over visual tokens of the smallest L2 distance to any Psi(w) (raw
  vectors, no normalisation; note that Gemma scales input embeddings inside the model, D does not).
- TACS (Eq. 14): per image, for each visual token the largest cosine to any caption-token embedding, the
  mean of the K largest of those; averaged over images.

The tensor functions work during training too (pass adapter outputs and a `WordTable`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sea.errors import SeaError
from sea.eval.settings import DiagnosticsSettings

log = logging.getLogger(__name__)

CHUNK = 4096  # visual tokens per similarity chunk


# --------------------------------------------------------------------------------------- embeddings


@dataclass
class WordTable:
    """A word list with its Psi(w) rows (fp32) and their unit-norm copies."""

    words: list[str]
    vectors: torch.Tensor  # (q, d)
    unit: torch.Tensor  # (q, d)

    @classmethod
    def build(
        cls,
        words: Sequence[str],
        tokenizer: Any,
        embedding: torch.Tensor,
        word_prefix: str = " ",
        tokenize: str = "in_context",
    ) -> WordTable:
        """From the LLM tokenizer and input-embedding matrix (`llm.get_input_embeddings().weight`), with
        the SEA loss's label embedding; words without tokens are left out."""
        from sea.training.sea_loss import label_embedding_table

        words = [w for w in dict.fromkeys(str(w).strip() for w in words) if w]
        if not words:
            raise SeaError("the word list for the diagnostics is empty")
        vectors, has = label_embedding_table(embedding.detach(), tokenizer, words, word_prefix, tokenize)
        has = has.to(vectors.device)
        if not bool(has.all()):
            words = [w for w, ok in zip(words, has.tolist(), strict=True) if ok]
            vectors = vectors[has]
        return cls(words, vectors, F.normalize(vectors, dim=-1))

    @classmethod
    def from_model(
        cls, model: Any, words: Sequence[str], word_prefix: str = " ", tokenize: str = "in_context"
    ) -> WordTable:
        weight = model.llm.get_input_embeddings().weight
        return cls.build(words, model.tokenizer, weight, word_prefix, tokenize)

    def index(self, word: str) -> int | None:
        try:
            return self.words.index(word)
        except ValueError:
            return None


def read_wordlist(path: str | Path) -> list[str]:
    """One word a line (the `prepare` stage's wordlist.txt)."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"word list not found: {path}")
    return [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]


# --------------------------------------------------------------------------------------- measures


@torch.no_grad()
def nearest_words(visual: torch.Tensor, table: WordTable, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, cosines), each (N, k), of the `k` most similar words for visual tokens (N, d)."""
    v = F.normalize(visual.reshape(-1, visual.shape[-1]).float(), dim=-1)
    unit = table.unit.to(v.device)
    idx, sims = [], []
    for chunk in v.split(CHUNK):
        s, i = (chunk @ unit.T).topk(min(k, unit.shape[0]), dim=-1)
        idx.append(i)
        sims.append(s)
    return torch.cat(idx), torch.cat(sims)


@torch.no_grad()
def modality_gap(visual: torch.Tensor, table: WordTable) -> float:
    """Eq. 5: mean over visual tokens of min_w ||x_v - Psi(w)||_2."""
    v = visual.reshape(-1, visual.shape[-1]).float()
    words = table.vectors.to(v.device)
    mins = [torch.cdist(chunk, words).min(dim=-1).values for chunk in v.split(CHUNK)]
    return float(torch.cat(mins).mean())


@torch.no_grad()
def tacs(visual: torch.Tensor, text: torch.Tensor, k: int = 10) -> float:
    """Eq. 14 for one image: mean of the top-`k` (over visual tokens) of the max cosine to any text token.
    `visual` (N, d) adapter outputs, `text` (M, d) caption-token embeddings."""
    if text.numel() == 0:
        raise SeaError("TACS needs at least one caption token")
    v = F.normalize(visual.float(), dim=-1)
    t = F.normalize(text.float().to(v.device), dim=-1)
    best = (v @ t.T).max(dim=-1).values
    return float(best.topk(min(k, best.numel())).values.mean())


def caption_embeddings(caption: str, tokenizer: Any, embedding: torch.Tensor) -> torch.Tensor:
    """Input-embedding rows of the caption's tokens (no special tokens)."""
    ids = tokenizer.encode(caption, add_special_tokens=False)
    return embedding.detach()[torch.tensor(ids, dtype=torch.long, device=embedding.device)].float()


# --------------------------------------------------------------------------------------- shapes world


def world_caption(row: dict[str, Any]) -> str:
    """A caption built from a world ground-truth row: "a red circle and a blue star on a gray background"."""
    objects = " and ".join(f"a {o['color']} {o['shape']}" for o in row.get("objects", []))
    return (
        f"{objects} on a {row['background']} background" if objects else f"a {row['background']} background"
    )


def patch_truth(row: dict[str, Any], grid: tuple[int, int]) -> list[tuple[str, set[str], str, str]]:
    """Per model patch (row-major over `grid`): (kind, accepted words, colour, shape), kind 'object' or
    'background'. The world's patch grid is sampled at each model patch's centre."""
    gt = row["patch_objects"]
    g = len(gt)
    objects = {int(o["index"]): o for o in row.get("objects", [])}
    out = []
    for r in range(grid[0]):
        for c in range(grid[1]):
            k = int(gt[int((r + 0.5) * g / grid[0])][int((c + 0.5) * g / grid[1])])
            if k and k in objects:
                o = objects[k]
                out.append(("object", {o["color"], o["shape"]}, o["color"], o["shape"]))
            else:
                out.append(("background", {row["background"]}, row["background"], ""))
    return out


def decode_accuracy(words: Sequence[str], truth: Sequence[tuple[str, set[str], str, str]]) -> dict[str, int]:
    """Counts of right nearest words per patch kind (see module docstring)."""
    n = {
        "object": 0,
        "object_hit": 0,
        "object_color": 0,
        "object_shape": 0,
        "background": 0,
        "background_hit": 0,
    }
    for w, (kind, accepted, color, shape) in zip(words, truth, strict=True):
        n[kind] += 1
        n[f"{kind}_hit"] += w in accepted
        if kind == "object":
            n["object_color"] += w == color
            n["object_shape"] += w == shape
    return n


# --------------------------------------------------------------------------------------- one model


def _visual_tokens(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """Adapter outputs of the patch tokens only: (B, N, d)."""
    visual = model.encode_images(pixels.to(model.device))
    extra = visual.shape[1] - model.vision.num_patches
    return visual[:, extra:] if extra > 0 else visual


@torch.no_grad()
def run_diagnostics(
    model: Any,
    pixels: Sequence[torch.Tensor],
    words: Sequence[str],
    captions: Sequence[str] | None = None,
    truth_rows: Sequence[dict[str, Any]] | None = None,
    *,
    batch_size: int = 16,
    tacs_k: int = 10,
    examples: int = 2,
    word_prefix: str = " ",
    tokenize: str = "in_context",
    table: WordTable | None = None,
) -> tuple[dict[str, float], str]:
    """Metrics (rates in percent) and a text dump of the decoded word grid of the first `examples` images.

    `pixels` are preprocessed images; `captions` (one per image) enable TACS; `truth_rows` (world
    ground-truth rows, one per image) enable the nearest-word accuracy. Words are embedded as the SEA
    loss embeds labels (`word_prefix`, `tokenize`: `align.sea`'s), or given as `table`."""
    table = table or WordTable.from_model(model, words, word_prefix, tokenize)
    embedding = model.llm.get_input_embeddings().weight
    grid = tuple(model.vision.grid)
    total_gap, n_tokens, cos_sum = 0.0, 0, 0.0
    tacs_values: list[float] = []
    counts: dict[str, int] = {}
    dump: list[str] = []
    for start in range(0, len(pixels), batch_size):
        visual = _visual_tokens(model, torch.stack(list(pixels[start : start + batch_size])))
        for j in range(visual.shape[0]):
            i = start + j
            vis = visual[j]
            total_gap += modality_gap(vis, table) * vis.shape[0]
            n_tokens += vis.shape[0]
            idx, sims = nearest_words(vis, table)
            cos_sum += float(sims[:, 0].sum())
            decoded = [table.words[int(t)] for t in idx[:, 0]]
            if captions is not None:
                tacs_values.append(
                    tacs(vis, caption_embeddings(captions[i], model.tokenizer, embedding), tacs_k)
                )
            if truth_rows is not None:
                for key, v in decode_accuracy(decoded, patch_truth(truth_rows[i], grid)).items():
                    counts[key] = counts.get(key, 0) + v
            if i < examples:
                head = f"image {i}" + (f" ({truth_rows[i].get('id')})" if truth_rows is not None else "")
                rows = [
                    " ".join(f"{w:>10}" for w in decoded[r * grid[1] : (r + 1) * grid[1]])
                    for r in range(grid[0])
                ]
                dump.append("\n".join([head, *rows]))
    metrics: dict[str, float] = {
        "modality_gap": total_gap / max(1, n_tokens),
        "nearest_word/mean_cosine": cos_sum / max(1, n_tokens),
    }
    if tacs_values:
        metrics["tacs"] = sum(tacs_values) / len(tacs_values)
    if counts:
        for kind in ("object", "background"):
            if counts.get(kind):
                metrics[f"nearest_word/{kind}_accuracy"] = counts[f"{kind}_hit"] / counts[kind] * 100
        if counts.get("object"):
            metrics["nearest_word/object_color_accuracy"] = counts["object_color"] / counts["object"] * 100
            metrics["nearest_word/object_shape_accuracy"] = counts["object_shape"] / counts["object"] * 100
        metrics["nearest_word/object_patches"] = float(counts.get("object", 0))
        metrics["nearest_word/background_patches"] = float(counts.get("background", 0))
    missing = [w for w in world_words(truth_rows) if table.index(w) is None] if truth_rows else []
    if missing:
        log.warning(
            "diagnostics: the word list lacks ground-truth words %s: those patches cannot be right", missing
        )
    return metrics, "\n\n".join(dump)


def world_words(rows: Sequence[dict[str, Any]]) -> list[str]:
    words = {r["background"] for r in rows} | {
        o[k] for r in rows for o in r.get("objects", []) for k in ("color", "shape")
    }
    return sorted(words)


# --------------------------------------------------------------------------------------- inputs


def diagnostic_inputs(
    model: Any, d: DiagnosticsSettings, aspect: str
) -> tuple[list[Any], list[str] | None, list[dict] | None, list[str]] | None:
    """(pixels, captions, world ground-truth rows or None, words) for the diagnostics, or None when
    there is nothing to run them on (see conf/eval/default.yaml)."""
    from sea.data.llava import open_image, preprocess_image
    from sea.utils.io import read_json, read_jsonl

    limit = d.max_images
    gt_path = Path(d.ground_truth) if d.ground_truth else None
    rows: list[dict] | None = None
    if gt_path is not None and gt_path.is_file():
        rows = read_jsonl(gt_path)[:limit]
        root = Path(d.image_root or gt_path.parent.parent)
        images = [open_image(root / r["image"], r["id"]) for r in rows]
        captions = [world_caption(r) for r in rows]
    elif d.captions:
        samples = held_out_samples(read_json(d.captions), d, limit)
        folder = Path(d.image_folder) if d.image_folder else None
        images = [
            open_image(folder / s["image"] if folder else Path(s["image"]), s.get("id")) for s in samples
        ]
        captions = [next(t["value"] for t in s["conversations"] if t.get("from") == "gpt") for s in samples]
    else:
        log.info("diagnostics: no world ground truth at %s and no captions file: skipped", gt_path)
        return None
    wl = Path(d.wordlist) if d.wordlist else None
    if wl is not None and wl.is_file():
        words = read_wordlist(wl)
    elif rows is not None:
        log.warning("diagnostics: word list %s not found: decoding over the world's vocabulary only", wl)
        words = world_words(rows)
    else:
        log.info("diagnostics: word list %s not found: skipped", wl)
        return None
    pixels = [preprocess_image(model.vision, im, aspect) for im in images]
    return pixels, captions, rows, words


def held_out_samples(samples: list[dict], d: DiagnosticsSettings, limit: int) -> list[dict]:
    """The first `limit` caption samples that no stage trained on: those of the `held_out` manifest
    (`prepare`'s `pretrain_heldout.jsonl`) when given, and never one whose image is in a `trained`
    manifest (same image folder)."""
    from sea.data.llava import read_manifest

    if d.held_out:
        path = Path(d.held_out)
        if not path.is_file():
            raise SeaError(f"{path}: no held-out manifest; set data.pretrain.holdout and run `prepare` again")
        samples = [samples[int(r["index"])] for r in read_manifest(path)]
    trained = {r.get("image") for m in d.trained or () if Path(m).is_file() for r in read_manifest(m)}
    kept = [s for s in samples if s.get("image") not in trained]
    if samples and not kept:
        raise SeaError(
            f"diagnostics: all {len(samples)} caption images of {d.captions} were trained on; set "
            "data.pretrain.holdout (prepare) or eval.diagnostics.captions to held-out images"
        )
    return kept[:limit]


# --------------------------------------------------------------------------------------- during stage 1


class TrainingProbe:
    """The diagnostics of a model under training every `every` optimizer steps (the paper's Fig. 5
    tracks TACS over stage 1), on fixed held-out images, logged as MLflow curves `<prefix>/<name>`.
    Call it as the loop's `after_step` hook; it runs on the main process only. The word table is built
    once (the LLM's input embeddings are frozen in stage 1)."""

    def __init__(
        self,
        model: Any,
        inputs: tuple[list[Any], list[str] | None, list[dict] | None, list[str]],
        every: int,
        *,
        word_prefix: str = " ",
        tokenize: str = "in_context",
        batch_size: int = 16,
        tacs_k: int = 10,
        prefix: str = "align_diag",
    ) -> None:
        self.model, self.every, self.prefix = model, int(every), prefix
        self.pixels, self.captions, self.rows, words = inputs
        self.table = WordTable.from_model(model, words, word_prefix, tokenize)
        self.batch_size, self.tacs_k = batch_size, tacs_k
        self.history: list[tuple[int, dict[str, float]]] = []

    def measure(self) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        try:
            metrics, _ = run_diagnostics(
                self.model,
                self.pixels,
                self.table.words,
                self.captions,
                self.rows,
                batch_size=self.batch_size,
                tacs_k=self.tacs_k,
                examples=0,
                table=self.table,
            )
        finally:
            self.model.train(was_training)
        return metrics

    def __call__(self, state: Any, row: dict[str, float]) -> None:
        if self.every <= 0 or state.step % self.every:
            return
        from sea.tracking import current

        metrics = self.measure()
        self.history.append((state.step, metrics))
        current().log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=state.step)
        log.info(
            "%s step %d: %s", self.prefix, state.step, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )
