"""Batched greedy decoding for `SeaMLLM`: left padding, KV cache, stop at end-of-turn tokens.

The prompts are spliced like in training (visual tokens at the placeholder), left-padded, and handed to the
HF model's `generate(inputs_embeds=..., attention_mask=...)`; transformers derives the position ids from the
attention mask, so padded and unpadded prompts decode identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from sea.errors import SeaError

if TYPE_CHECKING:
    from sea.models.mllm import ImagesArg, SeaMLLM


def end_token_ids(model: SeaMLLM, eos_token_ids: int | Sequence[int] | None) -> list[int]:
    """Explicit ids, else the generation config's eos id(s), else the tokenizer's eos."""
    if eos_token_ids is None:
        gen = getattr(model.llm, "generation_config", None)
        eos_token_ids = getattr(gen, "eos_token_id", None)
        if eos_token_ids is None and model.tokenizer is not None:
            eos_token_ids = model.tokenizer.eos_token_id
    if eos_token_ids is None:
        raise SeaError("no end-of-turn token: pass eos_token_ids")
    ids = [eos_token_ids] if isinstance(eos_token_ids, int) else list(eos_token_ids)
    return [int(i) for i in ids]


def pad_prompts(prompts: Sequence[Sequence[int] | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad unequal prompts into (ids, mask); the splice re-pads them on the left."""
    if not prompts:
        raise SeaError("no prompts to generate from")
    rows = [torch.as_tensor(p, dtype=torch.long).flatten() for p in prompts]
    width = max(int(r.numel()) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : r.numel()] = r
        mask[i, : r.numel()] = 1
    return ids, mask


@torch.no_grad()
def greedy_generate(
    model: SeaMLLM,
    input_ids_list: Sequence[Sequence[int] | torch.Tensor],
    images: ImagesArg = None,
    max_new_tokens: int = 32,
    eos_token_ids: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
) -> list[list[int]]:
    """New token ids per prompt (greedy), each cut before its first end-of-turn token."""
    from transformers import GenerationConfig

    eos = end_token_ids(model, eos_token_ids)
    if pad_token_id is None:
        tok = model.tokenizer
        pad_token_id = tok.pad_token_id if tok is not None and tok.pad_token_id is not None else eos[0]
    ids, mask = pad_prompts(input_ids_list)
    mm = model.prepare_multimodal_inputs(ids, None, mask, images, padding_side="left", max_length=None)
    config = GenerationConfig(
        max_new_tokens=int(max_new_tokens),
        do_sample=False,
        num_beams=1,
        use_cache=True,
        eos_token_id=eos,
        pad_token_id=int(pad_token_id),
    )
    was_training = model.llm.training
    model.llm.eval()
    try:
        out = model.llm.generate(
            inputs_embeds=mm.inputs_embeds, attention_mask=mm.attention_mask, generation_config=config
        )
    finally:
        model.llm.train(was_training)
    results: list[list[int]] = []
    stop = set(eos)
    for row in out.tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        results.append(row[:cut])
    return results
