"""What the loop trains: a `SeaMLLM` plus the stage's loss, as one module (one `prepare`, one DDP/FSDP/
DeepSpeed wrapper, one checkpoint). `forward(batch)` returns (loss, metrics of 0-d tensors)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sea.data.llava import IGNORE_INDEX
from sea.training.sea_loss import SeaLoss


def _lm_forward(mllm: nn.Module, batch: dict[str, Any]) -> tuple[Any, torch.Tensor]:
    """The MLLM's output and its LM loss; a micro-batch left without supervised tokens (every answer cut
    by `max_length`) has loss 0 instead of NaN, without a host-device synchronisation."""
    out = mllm(
        input_ids=batch["input_ids"],
        labels=batch["labels"],
        attention_mask=batch["attention_mask"],
        images=batch["images"],
    )
    supervised = (out.labels[:, 1:] != IGNORE_INDEX).sum()
    return out, torch.where(supervised > 0, out.loss, torch.zeros_like(out.loss))


class AlignModule(nn.Module):
    """Stage 1: L = L_g + weight * L_a (Eq. 13); `sea=None` is the plain LLaVA stage 1 (baseline arm)."""

    def __init__(self, mllm: nn.Module, sea: SeaLoss | None = None, weight: float = 1.0) -> None:
        super().__init__()
        self.mllm = mllm
        self.sea = sea
        self.weight = float(weight)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, loss = _lm_forward(self.mllm, batch)
        metrics = {"loss_lm": loss.detach()}
        if self.sea is not None:
            rows = batch["input_ids"].shape[0]
            image_of_row = torch.full((rows,), -1, dtype=torch.long, device=out.image_rows.device)
            image_of_row[out.image_rows] = torch.arange(out.image_rows.numel(), device=out.image_rows.device)
            loss_sea, sea_metrics = self.sea(out.visual_embeds, image_of_row, batch["sea_pairs"])
            loss = loss + self.weight * loss_sea
            metrics |= {"loss_sea": loss_sea.detach(), **sea_metrics}
        metrics["loss"] = loss.detach()
        return loss, metrics

    def after_optimizer_step(self) -> None:
        if self.sea is not None:
            self.sea.clamp_()


class InstructModule(nn.Module):
    """Stage 2: the LM loss of LLaVA instruction tuning."""

    def __init__(self, mllm: nn.Module) -> None:
        super().__init__()
        self.mllm = mllm

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _, loss = _lm_forward(self.mllm, batch)
        return loss, {"loss": loss.detach()}
