"""`SeaMLLM`: frozen open_clip tower + adapter + any HF causal LM, LLaVA-1.5 style.

`input_ids` carry one `IMAGE_TOKEN_INDEX` (-200) where an image goes. The model replaces each one with
the image's adapter outputs (N visual tokens, label -100), truncates every sequence to `max_length`
*after* that expansion (counted and logged: LLaVA #447), re-pads, rebuilds the attention mask and
position ids, and runs the LLM on `inputs_embeds` (LLaVA's `prepare_inputs_labels_for_multimodal`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import ModelOutput

from sea.data.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from sea.errors import SeaError
from sea.layout import ADAPTER_FILE
from sea.models.adapter import adapter_dims, build_adapter, load_adapter, save_adapter
from sea.models.llm import load_llm
from sea.models.vision import VisionTower, plain
from sea.utils.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

CONFIG_FILE = "sea_mllm.json"
FORMAT_VERSION = 1

ImagesArg = torch.Tensor | Sequence[torch.Tensor | None] | None


@dataclass
class MultimodalInputs:
    """What the LLM gets after splicing, plus where the images went."""

    inputs_embeds: torch.Tensor  # (B, T, d_llm)
    attention_mask: torch.Tensor  # (B, T) long
    position_ids: torch.Tensor  # (B, T) long
    labels: torch.Tensor | None  # (B, T) long, -100 on visual tokens and padding
    visual_embeds: torch.Tensor | None  # (B_img, N, d_llm) adapter outputs, images in placeholder order
    image_rows: torch.Tensor  # (B_img,) batch row of each image
    image_positions: torch.Tensor  # (B_img,) index of the image's first visual token in the padded sequence
    image_lengths: torch.Tensor  # (B_img,) visual tokens left after truncation (N, fewer, or 0)
    num_truncated: int  # sequences cut to max_length in this batch


@dataclass
class SeaMLLMOutput(ModelOutput):
    """`loss` and `logits` of the LLM, plus the visual tokens SEA's token-level loss needs."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    visual_embeds: torch.Tensor | None = None
    image_rows: torch.Tensor | None = None
    image_positions: torch.Tensor | None = None
    image_lengths: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    num_truncated: int | None = None  # sequences cut to max_length in this batch


def pad_sequences(
    embeds: list[torch.Tensor], labels: list[torch.Tensor], padding_side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Pad variable-length (T_i, d) embeddings and (T_i,) labels with zeros / -100 on one side.

    Returns (embeds, labels, attention_mask, position_ids, offsets); position ids count the real tokens
    from 0 (0 on padding), offsets are each row's padding before its first real token.
    """
    width = max(int(e.shape[0]) for e in embeds)
    device = embeds[0].device
    out_e, out_l, out_m, out_p, offsets = [], [], [], [], []
    for e, lab in zip(embeds, labels, strict=True):
        n, pad = int(e.shape[0]), width - int(e.shape[0])
        real = [e, lab, torch.ones(n, dtype=torch.long, device=device), torch.arange(n, device=device)]
        fill = [
            e.new_zeros(pad, e.shape[-1]),
            lab.new_full((pad,), IGNORE_INDEX),
            torch.zeros(pad, dtype=torch.long, device=device),
            torch.zeros(pad, dtype=torch.long, device=device),
        ]
        pairs = zip(real, fill, strict=True) if padding_side == "right" else zip(fill, real, strict=True)
        for out, (a, b) in zip((out_e, out_l, out_m, out_p), pairs, strict=True):
            out.append(torch.cat([a, b]))
        offsets.append(0 if padding_side == "right" else pad)
    return torch.stack(out_e), torch.stack(out_l), torch.stack(out_m), torch.stack(out_p), offsets


class SeaMLLM(nn.Module):
    """VisionTower -> adapter -> HF causal LM."""

    def __init__(
        self,
        vision: VisionTower,
        adapter: nn.Module,
        llm: nn.Module,
        tokenizer: Any = None,
        *,
        adapter_type: str = "mlp2x_gelu",
        max_length: int | None = 2048,
    ) -> None:
        super().__init__()
        self.vision = vision
        self.adapter = adapter
        self.llm = llm
        self.tokenizer = tokenizer
        self.adapter_type = adapter_type
        self.max_length = int(max_length) if max_length else None
        self.num_truncated = 0  # sequences truncated after image expansion, since construction
        self.num_sequences = 0  # sequences seen by forward
        d_llm = self.llm.get_input_embeddings().embedding_dim
        a_in, a_out = adapter_dims(adapter) if not isinstance(adapter, nn.Identity) else (d_llm, d_llm)
        if (a_in, a_out) != (vision.hidden_size, d_llm):
            raise SeaError(
                f"adapter maps {a_in} -> {a_out}, but the vision tower is {vision.hidden_size} wide "
                f"and the LLM {d_llm}"
            )

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, cfg: Any, torch_dtype: torch.dtype | str | None = None, device: str | torch.device | None = None
    ) -> SeaMLLM:
        """Build from the composed config: `model.vision`, `model.llm`, `model.adapter` (with optional
        `model.adapter.pretrained` weights, ours or LLaVA's `mm_projector.bin`)."""
        m = cfg.model if hasattr(cfg, "model") else cfg["model"]
        vision = VisionTower.from_config(m["vision"])
        llm, tokenizer = load_llm(m["llm"], torch_dtype=torch_dtype)
        acfg = plain(m["adapter"])
        adapter = build_adapter(acfg["type"], vision.hidden_size, llm.get_input_embeddings().embedding_dim)
        if acfg.get("pretrained"):
            load_adapter(acfg["pretrained"], adapter)
        model = cls(
            vision,
            adapter,
            llm,
            tokenizer,
            adapter_type=acfg["type"],
            max_length=plain(m["llm"]).get("max_length"),
        )
        return model.to(device) if device is not None else model

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `sea_mllm.json`, `vision/` (open_clip config + safetensors), `adapter.safetensors`
        (LLaVA key names) and `llm/` (HF `save_pretrained`, tokenizer included), atomically."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            self.vision.save(tmp / "vision")
            save_adapter(self.adapter, tmp / ADAPTER_FILE, type=self.adapter_type)
            self.llm.save_pretrained(tmp / "llm")
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(tmp / "llm")
            d_llm = self.llm.get_input_embeddings().embedding_dim
            write_json(
                tmp / CONFIG_FILE,
                {
                    "format_version": FORMAT_VERSION,
                    "vision": {
                        "path": "vision",
                        "name": self.vision.name,
                        "model_cfg": self.vision.model_cfg,
                        "select_layer": self.vision.select_layer,
                        "select_feature": self.vision.select_feature,
                        "preprocess": self.vision.preprocess_signature(),
                    },
                    "adapter": {
                        "path": ADAPTER_FILE,
                        "type": self.adapter_type,
                        "in_dim": self.vision.hidden_size,
                        "out_dim": d_llm,
                    },
                    "llm": {
                        "path": "llm",
                        "model_type": getattr(self.llm.config, "model_type", None),
                        "max_length": self.max_length,
                    },
                },
            )
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        torch_dtype: torch.dtype | str | None = None,
    ) -> SeaMLLM:
        """Load a `save_pretrained` folder; needs no training config and no network."""
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file():
            raise SeaError(f"{directory}: no {CONFIG_FILE}; not a saved SeaMLLM")
        meta = read_json(directory / CONFIG_FILE)
        v, a, lm = meta["vision"], meta["adapter"], meta["llm"]
        vision = VisionTower.load(
            directory / v["path"], select_layer=v["select_layer"], select_feature=v["select_feature"]
        )
        adapter = load_adapter(
            directory / a["path"], type=a["type"], in_dim=a["in_dim"], out_dim=a["out_dim"]
        )
        llm, tokenizer = load_llm(
            {"name_or_path": str(directory / lm["path"]), "max_length": lm.get("max_length")},
            torch_dtype=torch_dtype,
        )
        model = cls(vision, adapter, llm, tokenizer, adapter_type=a["type"], max_length=lm.get("max_length"))
        return model.to(device)

    # ---- parameters ---------------------------------------------------------------------------
    def set_trainable(self, adapter: bool = True, llm: bool = False) -> None:
        """Stage 1: adapter only (LLaVA's `tune_mm_mlp_adapter`); stage 2: adapter + LLM. The vision tower
        stays frozen."""
        self.adapter.requires_grad_(adapter)
        self.llm.requires_grad_(llm)
        self.vision.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    # ---- images -------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Adapter outputs per patch: (B, N, d_llm). No gradient reaches the tower."""
        feats = self.vision(images)
        ref = next(self.adapter.parameters(), None)
        out = self.adapter(feats.to(ref.dtype) if ref is not None else feats)
        return out.to(self.llm.get_input_embeddings().weight.dtype)

    def _select_images(self, images: ImagesArg, counts: torch.Tensor) -> torch.Tensor | None:
        """The image tensor for the placeholders, in row-major placeholder order. Accepts one image per
        placeholder, or LLaVA's layout of one (possibly dummy) image per sample."""
        n_img, batch = int(counts.sum()), counts.numel()
        if images is None:
            if n_img:
                raise SeaError(f"the batch has {n_img} image placeholders but no images were given")
            return None
        if isinstance(images, torch.Tensor):
            if images.dim() == 3:
                images = images.unsqueeze(0)
            if images.shape[0] == n_img:
                return images if n_img else None
            if images.shape[0] == batch and int(counts.max()) <= 1:
                return images[counts.to(images.device).bool()] if n_img else None
            raise SeaError(
                f"{images.shape[0]} images for {n_img} placeholders in a batch of {batch}: give one "
                "image per placeholder (in batch order) or one per sample"
            )
        items = list(images)
        if len(items) == batch and int(counts.max()) <= 1 and any(x is None for x in items):
            items = [x for x, c in zip(items, counts.tolist(), strict=True) if c]
        items = [x for x in items if x is not None]
        if len(items) != n_img:
            raise SeaError(f"{len(items)} images for {n_img} image placeholders")
        return torch.stack(items) if items else None

    # ---- splicing -----------------------------------------------------------------------------
    def prepare_multimodal_inputs(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        images: ImagesArg = None,
        padding_side: str = "right",
        max_length: int | None = -1,
    ) -> MultimodalInputs:
        """Splice visual tokens at the placeholders, truncate to `max_length` (-1: the model's; None: no
        limit), re-pad on `padding_side`, rebuild attention mask and position ids."""
        if padding_side not in ("right", "left"):
            raise SeaError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        max_length = self.max_length if max_length == -1 else max_length
        device = self.device
        input_ids = input_ids.to(device)
        batch = input_ids.shape[0]
        mask = (
            torch.ones_like(input_ids, dtype=torch.bool)
            if attention_mask is None
            else attention_mask.to(device).bool()
        )
        is_img = (input_ids == IMAGE_TOKEN_INDEX) & mask
        counts = is_img.sum(dim=1)
        pixels = self._select_images(images, counts)
        visual = self.encode_images(pixels) if pixels is not None else None
        embed = self.llm.get_input_embeddings()
        text_embeds = embed(input_ids.masked_fill(is_img | ~mask, 0))
        if labels is not None:
            labels = labels.to(device)

        seq_embeds: list[torch.Tensor] = []
        seq_labels: list[torch.Tensor] = []
        rows: list[int] = []
        starts: list[int] = []
        img = 0
        for b in range(batch):
            valid = mask[b]
            ids_b, emb_b = input_ids[b][valid], text_embeds[b][valid]
            lab_b = labels[b][valid] if labels is not None else torch.full_like(ids_b, IGNORE_INDEX)
            pieces_e: list[torch.Tensor] = []
            pieces_l: list[torch.Tensor] = []
            length, cur = 0, 0
            for p in (ids_b == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist():
                pieces_e += [emb_b[cur:p], visual[img]]  # type: ignore[index]
                pieces_l += [lab_b[cur:p], lab_b.new_full((visual.shape[1],), IGNORE_INDEX)]  # type: ignore[union-attr]
                length += p - cur
                rows.append(b)
                starts.append(length)
                length += visual.shape[1]  # type: ignore[union-attr]
                img += 1
                cur = p + 1
            pieces_e.append(emb_b[cur:])
            pieces_l.append(lab_b[cur:])
            seq_embeds.append(torch.cat(pieces_e))
            seq_labels.append(torch.cat(pieces_l))
        if visual is None and torch.is_grad_enabled():
            # Keep the adapter in the graph when a batch has no image (LLaVA's empty slice), so every
            # rank runs the same parameters under DDP.
            ref = next(self.adapter.parameters(), None)
            if ref is not None:
                empty = self.adapter(ref.new_zeros(1, self.vision.hidden_size))[:0].to(seq_embeds[0].dtype)
                seq_embeds[0] = torch.cat([seq_embeds[0], empty])

        lengths = [int(e.shape[0]) for e in seq_embeds]
        truncated = 0
        if max_length is not None:
            truncated = sum(n > max_length for n in lengths)
            if truncated:
                seq_embeds = [e[:max_length] for e in seq_embeds]
                seq_labels = [lab[:max_length] for lab in seq_labels]
                lengths = [min(n, max_length) for n in lengths]
                self._warn_truncated(truncated, batch, max_length)
        self.num_truncated += truncated
        self.num_sequences += batch

        embeds, labels_out, attn, positions, offsets = pad_sequences(seq_embeds, seq_labels, padding_side)
        n_vis = visual.shape[1] if visual is not None else 0
        img_lengths = [max(0, min(n_vis, lengths[r] - s)) for r, s in zip(rows, starts, strict=True)]
        return MultimodalInputs(
            inputs_embeds=embeds,
            attention_mask=attn,
            position_ids=positions,
            labels=labels_out if labels is not None else None,
            visual_embeds=visual,
            image_rows=torch.tensor(rows, dtype=torch.long, device=device),
            image_positions=torch.tensor(
                [s + offsets[r] for r, s in zip(rows, starts, strict=True)], dtype=torch.long, device=device
            ),
            image_lengths=torch.tensor(img_lengths, dtype=torch.long, device=device),
            num_truncated=truncated,
        )

    def _warn_truncated(self, truncated: int, batch: int, max_length: int) -> None:
        log.warning(
            "%d of %d sequences exceed max_length=%d after image expansion and were truncated (%d so far); "
            "visual tokens or answers may be cut (LLaVA issue #447)",
            truncated,
            batch,
            max_length,
            self.num_truncated + truncated,
        )

    # ---- forward / generate -------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        images: ImagesArg = None,
        **llm_kwargs: Any,
    ) -> SeaMLLMOutput:
        """LM loss (when `labels` are given) and logits over the expanded sequence, plus the visual tokens."""
        mm = self.prepare_multimodal_inputs(input_ids, labels, attention_mask, images, padding_side="right")
        out = self.llm(
            inputs_embeds=mm.inputs_embeds,
            attention_mask=mm.attention_mask,
            position_ids=mm.position_ids,
            labels=mm.labels,
            use_cache=False,
            **llm_kwargs,
        )
        return SeaMLLMOutput(
            loss=out.loss,
            logits=out.logits,
            visual_embeds=mm.visual_embeds,
            image_rows=mm.image_rows,
            image_positions=mm.image_positions,
            image_lengths=mm.image_lengths,
            labels=mm.labels,
            attention_mask=mm.attention_mask,
            num_truncated=mm.num_truncated,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids_list: Sequence[Sequence[int] | torch.Tensor],
        images: ImagesArg = None,
        max_new_tokens: int = 32,
        eos_token_ids: int | Sequence[int] | None = None,
        pad_token_id: int | None = None,
    ) -> list[list[int]]:
        """Batched greedy decoding (left padding, KV cache); returns the new tokens of each prompt, cut before
        the first end-of-turn token."""
        from sea.models.generation import greedy_generate

        return greedy_generate(self, input_ids_list, images, max_new_tokens, eos_token_ids, pad_token_id)
