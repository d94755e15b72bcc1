"""Load any HF causal LM and its tokenizer from `model.llm`, with a clear error when weights are missing."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from sea.errors import SeaError
from sea.models.vision import plain

log = logging.getLogger(__name__)

# `model.config.model_type` values expected for each `model.llm.family` (a mismatch only warns).
FAMILY_MODEL_TYPES = {
    "llama": {"llama"},
    "gemma": {"gemma"},
    "phi3": {"phi3"},
    "qwen2": {"qwen2"},
}


def is_local_reference(name_or_path: str) -> bool:
    """True for a filesystem path (existing, absolute, ./ ~ prefixed, or with more than one '/'),
    False for a hub id such as 'org/name'."""
    s = str(name_or_path)
    return (
        Path(s).expanduser().exists()
        or os.path.isabs(s)
        or s.startswith((".", "~"))
        or "\\" in s
        or s.count("/") > 1
    )


def _hub_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub import errors as hub_errors

        errors += [hub_errors.EntryNotFoundError, hub_errors.HFValidationError]
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        pass
    return tuple(errors)


def _missing_message(name_or_path: str, err: BaseException | None = None) -> str:
    cause = f" ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})" if err else ""
    if is_local_reference(name_or_path):
        return (
            f"LLM weights not found at '{name_or_path}'{cause}: it must be a folder written by HF "
            "`save_pretrained` (config.json, weights, tokenizer). For the embedded default run the "
            "`backbones` stage first; otherwise set model.llm.name_or_path to a local folder or a hub id."
        )
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") else ""
    return (
        f"cannot load LLM '{name_or_path}' from the Hugging Face hub or its local cache{offline}{cause}. "
        f"Download it once with network: `huggingface-cli download {name_or_path}` (gated models such as "
        "Gemma and Llama 3 need their licence accepted on the hub and `huggingface-cli login`), or set "
        "model.llm.name_or_path to a local folder holding the weights."
    )


def _check_reference(name_or_path: str) -> None:
    if not name_or_path:
        raise SeaError("model.llm.name_or_path is empty")
    if is_local_reference(name_or_path):
        p = Path(name_or_path).expanduser()
        if not p.is_dir() or not (p / "config.json").is_file():
            raise SeaError(_missing_message(name_or_path))


def load_tokenizer(lcfg: Any) -> Any:
    """`AutoTokenizer` for `model.llm`: right padding, `model_max_length = max_length`, and a pad token
    (unk, else eos) when the tokenizer has none."""
    from transformers import AutoTokenizer

    c = plain(lcfg)
    ref = str(c["name_or_path"])
    _check_reference(ref)
    kwargs: dict[str, Any] = {
        "trust_remote_code": bool(c.get("trust_remote_code", False)),
        "padding_side": "right",
    }
    if c.get("max_length"):
        kwargs["model_max_length"] = int(c["max_length"])
    try:
        tok = AutoTokenizer.from_pretrained(ref, **kwargs)
    except _hub_errors() as err:
        raise SeaError(_missing_message(ref, err)) from err
    if tok.pad_token is None:
        fallback = tok.unk_token or tok.eos_token
        if fallback is not None:
            log.info("tokenizer of %s has no pad token: using %r", ref, fallback)
            tok.pad_token = fallback
    return tok


def load_llm(
    lcfg: Any,
    torch_dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    with_tokenizer: bool = True,
) -> tuple[Any, Any]:
    """(model, tokenizer) from `model.llm` through `AutoModelForCausalLM` / `AutoTokenizer`.

    Raises `SeaError` naming the model and how to get it when the weights are missing locally and the hub
    is unreachable (offline, not downloaded, gated).
    """
    from transformers import AutoModelForCausalLM

    c = plain(lcfg)
    ref = str(c["name_or_path"])
    _check_reference(ref)
    tokenizer = load_tokenizer(c) if with_tokenizer else None
    kwargs: dict[str, Any] = {"trust_remote_code": bool(c.get("trust_remote_code", False))}
    if torch_dtype is not None:
        kwargs["dtype"] = getattr(torch, torch_dtype) if isinstance(torch_dtype, str) else torch_dtype
    if c.get("attn_implementation"):
        kwargs["attn_implementation"] = c["attn_implementation"]
    try:
        model = AutoModelForCausalLM.from_pretrained(ref, **kwargs)
    except _hub_errors() as err:
        raise SeaError(_missing_message(ref, err)) from err
    if device is not None:
        model.to(device)
    family = c.get("family")
    expected = FAMILY_MODEL_TYPES.get(str(family))
    if expected and model.config.model_type not in expected:
        log.warning("model.llm.family=%s but %s has model_type %r", family, ref, model.config.model_type)
    if tokenizer is not None and model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
