"""Text side of labeling: the word list W embedded once with the CLIP text tower (sea-method.md Eq. 7).

Words go through a prompt template ("{}" = the raw word, the default) or a list of templates (an
ensemble: the mean of the normalised embeddings, normalised again). The result is cached on disk under
a key made of the model fingerprint, the word list's hash and the templates, so the same word list is
embedded once per model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sea.errors import SeaError

log = logging.getLogger(__name__)

CACHE_VERSION = 1
# Values sampled per tensor for the model fingerprint (cheap even for ViT-L, changes with any training).
FINGERPRINT_SAMPLES = 4096


def words_sha256(words: Sequence[str]) -> str:
    """sha256 of the word list (one word a line, in order)."""
    return hashlib.sha256("".join(w + "\n" for w in words).encode("utf-8")).hexdigest()


def read_words(path: str | Path) -> list[str]:
    """A word list file, one word a line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"word list {path} not found: run the `prepare` stage first")
    words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
    if not words:
        raise SeaError(f"word list {path} is empty")
    return words


def templates_of(prompt: str | Sequence[str]) -> list[str]:
    """The prompt template(s) as a list; each must contain '{}' exactly once."""
    templates = [prompt] if isinstance(prompt, str) else list(prompt)
    if not templates:
        raise SeaError("label.prompt must be a template such as '{}' or a non-empty list of them")
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise SeaError(f"label.prompt template {t!r} must contain '{{}}' exactly once")
    return templates


def model_fingerprint(tower: Any) -> str:
    """A content fingerprint of a CLIP model: name, every tensor's name, shape and dtype, and a strided
    sample of its values (hashing all of ViT-L's 1.7 GB would take seconds)."""
    h = hashlib.sha256(str(getattr(tower, "name", "")).encode())
    for key, value in sorted(tower.clip.state_dict().items()):
        flat = value.detach().reshape(-1)
        step = max(1, flat.numel() // FINGERPRINT_SAMPLES)
        sample = flat[::step][:FINGERPRINT_SAMPLES].to("cpu", torch.float32).contiguous()
        h.update(f"{key}|{tuple(value.shape)}|{value.dtype}".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()


def cache_key(fingerprint: str, words_hash: str, templates: Sequence[str]) -> str:
    record = {"v": CACHE_VERSION, "model": fingerprint, "words": words_hash, "templates": list(templates)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


@torch.no_grad()
def embed_words(
    tower: Any, words: Sequence[str], templates: Sequence[str] = ("{}",), batch_size: int = 1024
) -> torch.Tensor:
    """L2-normalised text embeddings (q, embed_dim), fp32 on the tower's device."""
    total: torch.Tensor | None = None
    for template in templates:
        emb = tower.encode_text([template.format(w) for w in words], batch_size=batch_size).float()
        total = emb if total is None else total + emb
    assert total is not None
    return torch.nn.functional.normalize(total, dim=-1)


def word_embeddings(
    tower: Any,
    words: Sequence[str],
    prompt: str | Sequence[str] = "{}",
    cache_dir: str | Path | None = None,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The word embedding matrix T (q, d), fp32, normalised, on the tower's device, and its description
    (`model_fingerprint`, `words_sha256`, `templates`, `cache_key`, `cached`).

    With `cache_dir`, a matrix cached under the same key is loaded instead of recomputed.
    """
    from safetensors.torch import load_file, save_file

    templates = templates_of(prompt)
    info: dict[str, Any] = {
        "model_fingerprint": model_fingerprint(tower),
        "words_sha256": words_sha256(words),
        "templates": templates,
        "num_words": len(words),
    }
    info["cache_key"] = cache_key(info["model_fingerprint"], info["words_sha256"], templates)
    path = Path(cache_dir) / f"text-{info['cache_key']}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        emb = load_file(str(path))["embeddings"]
        if emb.shape == (len(words), tower.embed_dim):
            log.info("word embeddings: %d words from the cache %s", len(words), path)
            return emb.to(tower.device), {**info, "cached": True}
        log.warning("word embedding cache %s has shape %s, recomputing", path, tuple(emb.shape))
    emb = embed_words(tower, words, templates, batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        meta = {k: json.dumps(v) for k, v in info.items()}
        try:
            save_file({"embeddings": emb.detach().cpu().contiguous()}, tmp, metadata=meta)
            os.replace(tmp, path)  # atomic: several processes may write the same entry
        finally:
            Path(tmp).unlink(missing_ok=True)
    log.info("word embeddings: %d words x %d templates embedded", len(words), len(templates))
    return emb, {**info, "cached": False}
