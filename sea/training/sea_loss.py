"""SEA's token-level alignment loss (sea-method.md sections 3-5, Eqs. 9-11; design.md section 4).

Per image and step, from the stored top-n labels of every patch:

1. window sampling: the patch grid is cut into k x k windows (partial windows at the right and bottom
   edges when k does not divide the grid) and one patch is picked per window, uniformly among the
   window's patches that have a label (`empty_window='resample'`; 'skip' picks among all patches and
   drops the window when the pick has no label);
2. label sampling: one of the patch's labels with probability score / sum(scores) (Eq. 9, linear
   weights, labels with score <= `min_score` dropped), or the best one (`sampling='argmax'`);
3. de-duplication: a word sampled for several patches of the batch keeps one of them, at random.

Every random choice reads a uniform number drawn per image from a generator keyed by (seed, epoch,
sample index) (`image_uniforms`), so the pairs of an image do not depend on how samples are batched,
on the process that loads them or on a resume; they change every epoch. Sampling runs on the CPU in
the data collator (`sample_pairs`), so the training step only gathers the sampled adapter outputs.

The loss (`SeaLoss`): symmetric InfoNCE (Eq. 11) on the cosine similarity between the adapter outputs
x_v of the sampled patches and the label embeddings t (Eq. 10: mean of the frozen LLM input embeddings
of the word's tokens, `label_embedding_table`), with a learnable logit scale 1/tau kept in log space
(CLIP/open_clip: init 1/0.07, clamped at 100 after every optimizer step). Computed in fp32 outside
autocast. With more than one process the contrastive batch is all-gathered across processes by default
(`gather: null`; with gradient, local rows against all columns, open_clip's `local_loss`) and
de-duplicated globally; `gather: false` keeps each process's micro-batch as its own contrastive batch.
Logged per step: `sea/pairs` (pairs in one contrastive batch: the gathered one, or this process's) and
`sea/pairs_per_step` (pairs in the loss over the whole optimizer step: all micro-batches, all processes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sea.errors import SeaError
from sea.utils.settings import settings_from

log = logging.getLogger(__name__)

SAMPLING_MODES = ("weighted", "argmax")
EMPTY_WINDOW_MODES = ("resample", "skip")
TOKENIZE_MODES = ("in_context", "plain")
# Uniform numbers per patch: window pick, label pick, de-duplication priority.
N_UNIFORMS = 3


@dataclass(frozen=True)
class SeaSettings:
    """The SEA loss settings (config `align.sea`); every default is design.md section 4."""

    weight: float = 1.0  # lambda in L = L_g + lambda * L_a; 0 = the plain LLaVA baseline
    window: int = 2  # k: one patch per k x k window
    sampling: str = "weighted"  # 'weighted' (Eq. 9) or 'argmax'
    min_score: float = 0.0  # labels with score <= min_score are dropped
    empty_window: str = "resample"  # pick among labelled patches of a window, or 'skip' unlabelled picks
    dedup: bool = True  # each word at most once per contrastive batch
    logit_scale_init: float = 1 / 0.07  # 1/tau at the start
    logit_scale_max: float = 100.0  # 1/tau is clamped at this after every optimizer step
    learn_logit_scale: bool = True
    word_prefix: str = " "  # label text = prefix + word
    tokenize: str = "in_context"  # 'in_context': tokens of prefix+word after a word; 'plain': alone
    gather: bool | None = None  # all-gather the contrastive batch across processes (None: when > 1)
    missing_labels: str = "error"  # an image without stored labels: 'error' or 'skip' (no pairs)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise SeaError(f"align.sea.weight must be >= 0, got {self.weight}")
        if self.window < 1:
            raise SeaError(f"align.sea.window must be >= 1, got {self.window}")
        for key, allowed in (
            ("sampling", SAMPLING_MODES),
            ("empty_window", EMPTY_WINDOW_MODES),
            ("tokenize", TOKENIZE_MODES),
            ("missing_labels", ("error", "skip")),
        ):
            if getattr(self, key) not in allowed:
                raise SeaError(f"align.sea.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if not 0 < self.logit_scale_init <= self.logit_scale_max:
            raise SeaError(
                f"align.sea needs 0 < logit_scale_init <= logit_scale_max, got {self.logit_scale_init} "
                f"and {self.logit_scale_max}"
            )

    @classmethod
    def from_config(cls, c: Mapping[str, Any] | None) -> SeaSettings:
        """From a mapping; unknown keys and wrong types are an error (typos must not pass silently)."""
        return settings_from(cls, c, "align.sea")

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    def gathers(self, world_size: int) -> bool:
        """Whether the contrastive batch is the global one (pairs of every process) at `world_size`."""
        return world_size > 1 and self.gather is not False

    def describe(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- sampling


def image_uniforms(seed: int, epoch: int, index: int, num_patches: int) -> torch.Tensor:
    """(N_UNIFORMS, N) uniform numbers in [0, 1) of one image at one epoch (CPU, deterministic)."""
    key = (int(seed) * 1_000_003 + int(epoch)) * 2_147_483_647 + int(index)
    g = torch.Generator().manual_seed(key % (2**63 - 1))
    return torch.rand(N_UNIFORMS, num_patches, generator=g)


def window_table(grid: Sequence[int], k: int) -> torch.Tensor:
    """(W, k*k) patch indices (row-major) of each k x k window of a (rows, cols) grid; windows at the
    right and bottom edges may be partial, their missing slots are -1."""
    gh, gw = int(grid[0]), int(grid[1])
    windows = []
    for r0 in range(0, gh, k):
        for c0 in range(0, gw, k):
            cells = [r * gw + c for r in range(r0, min(r0 + k, gh)) for c in range(c0, min(c0 + k, gw))]
            windows.append(cells + [-1] * (k * k - len(cells)))
    return torch.tensor(windows, dtype=torch.long)


def sample_window_patches(
    valid: torch.Tensor, u: torch.Tensor, table: torch.Tensor, empty_window: str = "resample"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One patch per window per image: (rows, patches) of the kept picks.

    `valid` (B, N) bool: the patch has at least one usable label; `u` (B, N) uniforms; `table` from
    `window_table`. 'resample': the window's labelled patch with the largest u (uniform among them),
    windows without one are dropped; 'skip': the patch with the largest u, dropped when unlabelled.
    """
    batch, n = valid.shape
    keys = torch.where(valid, u, torch.full_like(u, -1.0)) if empty_window == "resample" else u.clone()
    keys = torch.cat([keys, keys.new_full((batch, 1), -2.0)], dim=1)  # column n: padding slot
    slots = torch.where(table >= 0, table, torch.full_like(table, n))  # (W, kk)
    per_window = keys[:, slots]  # (B, W, kk)
    best = per_window.argmax(dim=-1)  # (B, W): first maximum, so exactly one pick per window
    patches = slots[torch.arange(slots.shape[0]), best]  # (B, W)
    rows = torch.arange(batch).unsqueeze(1).expand_as(patches)
    keep = valid[rows, patches.clamp(max=n - 1)] & (patches < n)
    return rows[keep], patches[keep]


def sample_labels(
    ids: torch.Tensor, scores: torch.Tensor, u: torch.Tensor, min_score: float = 0.0, mode: str = "weighted"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One label per row of (M, n) `ids`/`scores`: (word ids (M,), ok (M,) bool).

    'weighted': inverse-CDF sampling with the uniforms `u` (M,) from the scores normalised over the
    usable labels (id >= 0, score > min_score) (Eq. 9); 'argmax': the best usable label. Rows without a
    usable label get ok=False.
    """
    usable = (ids >= 0) & (scores > min_score)
    weights = torch.where(usable, scores.float(), torch.zeros((), dtype=torch.float32))
    ok = usable.any(dim=-1)
    if mode == "argmax":
        pick = weights.argmax(dim=-1)
    else:
        cdf = weights.cumsum(dim=-1)
        threshold = u.float().unsqueeze(-1) * cdf[..., -1:]
        pick = (cdf <= threshold).sum(dim=-1)
        # Float rounding can push the pick past the last usable label: take that label then.
        last = torch.where(usable, torch.arange(ids.shape[-1]), torch.full_like(ids, -1, dtype=torch.long))
        pick = torch.minimum(pick, last.max(dim=-1).values.clamp(min=0))
    words = ids.gather(-1, pick.unsqueeze(-1)).squeeze(-1).long()
    return words, ok


def dedup_pairs(words: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
    """Indices (ascending) of the pairs to keep so that every word stays once: among pairs with the same
    word the one with the largest priority (a uniform number, so a random one)."""
    if words.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(priority, descending=True, stable=True)
    by_word = torch.argsort(words[order], stable=True)
    idx = order[by_word]
    sorted_words = words[idx]
    first = torch.ones_like(sorted_words, dtype=torch.bool)
    first[1:] = sorted_words[1:] != sorted_words[:-1]
    return torch.sort(idx[first]).values


@dataclass
class SeaPairs:
    """The (patch, word) pairs of one micro-batch: batch row, patch index and word id of each pair, and
    its de-duplication priority (for a global de-duplication across processes)."""

    rows: torch.Tensor  # (M,) long
    patches: torch.Tensor  # (M,) long
    words: torch.Tensor  # (M,) long
    priority: torch.Tensor  # (M,) float32

    def __len__(self) -> int:
        return int(self.rows.numel())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SeaPairs:
        return SeaPairs(*(getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)))

    def pin_memory(self) -> SeaPairs:
        """Called by the DataLoader with `pin_memory=True`, so the copy to the GPU does not block."""
        return SeaPairs(*(getattr(self, f.name).pin_memory() for f in fields(self)))


def sample_pairs(
    label_ids: torch.Tensor,
    label_scores: torch.Tensor,
    uniforms: torch.Tensor,
    grid: Sequence[int],
    settings: SeaSettings,
    table: torch.Tensor | None = None,
    word_ok: torch.Tensor | None = None,
) -> SeaPairs:
    """Window sampling, label sampling and de-duplication for a batch (all on the CPU).

    `label_ids` (B, N, n) (-1 = empty slot), `label_scores` (B, N, n), `uniforms` (B, N_UNIFORMS, N);
    `word_ok` (q,) bool: words that can enter the loss (others count as empty slots).
    """
    if label_ids.shape != label_scores.shape or label_ids.dim() != 3:
        raise SeaError(
            f"labels must be (B, N, n) ids and scores, got {tuple(label_ids.shape)} / "
            f"{tuple(label_scores.shape)}"
        )
    batch, n, _ = label_ids.shape
    if word_ok is not None:
        label_ids = torch.where(
            word_ok[label_ids.long().clamp(min=0)], label_ids, torch.full_like(label_ids, -1)
        )
    if n != int(grid[0]) * int(grid[1]):
        raise SeaError(
            f"labels have {n} patches per image, the vision tower's grid {tuple(grid)} has "
            f"{grid[0] * grid[1]}"
        )
    usable = (label_ids >= 0) & (label_scores.float() > settings.min_score)
    table = window_table(grid, settings.window) if table is None else table
    rows, patches = sample_window_patches(usable.any(-1), uniforms[:, 0], table, settings.empty_window)
    words, ok = sample_labels(
        label_ids[rows, patches].long(),
        label_scores[rows, patches],
        uniforms[rows, 1, patches],
        settings.min_score,
        settings.sampling,
    )
    priority = uniforms[rows, 2, patches].float()
    rows, patches, words, priority = rows[ok], patches[ok], words[ok], priority[ok]
    if settings.dedup:
        keep = dedup_pairs(words, priority)
        rows, patches, words, priority = rows[keep], patches[keep], words[keep], priority[keep]
    return SeaPairs(rows, patches, words, priority)


# ------------------------------------------------------------------------------- label embeddings


def _word_token_ids(tokenizer: Any, words: Sequence[str], prefix: str, mode: str) -> list[list[int]]:
    """Token ids of prefix + word per word, without special tokens. 'in_context': the tokens the text
    gets after a preceding word ("a" + prefix + word minus "a"), which is how the word appears
    mid-sentence for SentencePiece (no dummy-prefix artefact) and byte-level BPE alike; 'plain':
    `tokenizer(prefix + word)`. A word whose in-context split does not line up is tokenized alone."""
    texts = [prefix + w for w in words]
    if mode == "plain":
        return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    head = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    both = tokenizer(["a" + t for t in texts], add_special_tokens=False)["input_ids"]
    out: list[list[int]] = []
    alone: list[int] = []
    for i, ids in enumerate(both):
        ids = list(ids)
        if ids[: len(head)] == head and len(ids) > len(head):
            out.append(ids[len(head) :])
        else:
            out.append([])
            alone.append(i)
    if alone:
        plain = tokenizer([texts[i] for i in alone], add_special_tokens=False)["input_ids"]
        for i, ids in zip(alone, plain, strict=True):
            out[i] = list(ids)
    return out


@torch.no_grad()
def label_embedding_table(
    embedding: nn.Embedding | torch.Tensor,
    tokenizer: Any,
    words: Sequence[str],
    prefix: str = " ",
    mode: str = "in_context",
    chunk: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 10 for every word: (table (q, d) fp32, has_tokens (q,) bool), on the embedding's device.

    Row w is the mean of the (frozen) input embeddings of the tokens of prefix + word; words that
    tokenize to nothing get a zero row and has_tokens False (they never enter the loss). Computed once:
    the LLM's input embeddings do not train in stage 1. `embedding`: the module or its weight matrix.
    The alignment diagnostics (`sea.eval.diagnostics.WordTable`) embed their words with this too.
    """
    weight = embedding.weight if isinstance(embedding, nn.Module) else embedding
    weight = weight if weight.dtype == torch.float32 else weight.float()
    table = torch.zeros(len(words), weight.shape[1], dtype=torch.float32, device=weight.device)
    has = torch.zeros(len(words), dtype=torch.bool)
    for start in range(0, len(words), chunk):
        token_ids = _word_token_ids(tokenizer, words[start : start + chunk], prefix, mode)
        lengths = torch.tensor([len(ids) for ids in token_ids])
        flat = torch.tensor([i for ids in token_ids for i in ids], dtype=torch.long, device=weight.device)
        offsets = torch.cumsum(lengths, 0) - lengths
        if flat.numel():
            # mean per word in one call; words without tokens get zeros (empty bags)
            means = F.embedding_bag(flat, weight, offsets.to(weight.device), mode="mean")
            table[start : start + len(token_ids)] = means.float()
        has[start : start + len(token_ids)] = lengths > 0
    missing = int((~has).sum())
    if missing:
        log.warning("%d of %d label words tokenize to no tokens and are never used", missing, len(words))
    return table, has


# ------------------------------------------------------------------------------------------- loss


def symmetric_info_nce(
    x: torch.Tensor, t: torch.Tensor, logit_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 11 for M pairs (x_i, t_i): (loss, logits (M, M)); `logit_scale` is 1/tau (not its log)."""
    logits = logit_scale * F.normalize(x.float(), dim=-1) @ F.normalize(t.float(), dim=-1).T
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss, logits


def local_info_nce(
    x_local: torch.Tensor,
    t_local: torch.Tensor,
    x_all: torch.Tensor,
    t_all: torch.Tensor,
    offset: int,
    logit_scale: torch.Tensor,
    world_size: int,
) -> torch.Tensor:
    """This process's share of Eq. 11 over a batch gathered from `world_size` processes: its rows
    (offset .. offset + m) against all columns, both directions, summed and scaled so that averaging the
    shares over processes (what DDP does with gradients) gives the loss of the whole gathered batch."""
    total = x_all.shape[0]
    xn, tn = F.normalize(x_local.float(), dim=-1), F.normalize(t_local.float(), dim=-1)
    target = torch.arange(offset, offset + xn.shape[0], device=xn.device)
    rows = F.cross_entropy(logit_scale * xn @ F.normalize(t_all.float(), dim=-1).T, target, reduction="sum")
    cols = F.cross_entropy(logit_scale * tn @ F.normalize(x_all.float(), dim=-1).T, target, reduction="sum")
    return 0.5 * (rows + cols) * world_size / max(total, 1)


def _gather_padded(x: torch.Tensor, count: int, max_count: int, with_grad: bool) -> list[torch.Tensor]:
    """All-gather variable-length rows (padded to `max_count`), each process's part unpadded later."""
    import torch.distributed as dist

    pad = torch.zeros(max_count - count, *x.shape[1:], dtype=x.dtype, device=x.device)
    xp = torch.cat([x, pad])
    if with_grad:
        from torch.distributed.nn.functional import all_gather

        return list(all_gather(xp))
    parts = [torch.empty_like(xp) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, xp.contiguous())
    return parts


class SeaLoss(nn.Module):
    """L_a with a learnable logit scale; the label embedding table is a plain tensor attribute (not a
    parameter or buffer: not trained, not checkpointed, not broadcast by DDP)."""

    def __init__(self, settings: SeaSettings, table: torch.Tensor) -> None:
        super().__init__()
        self.settings = settings
        init = torch.tensor(math.log(settings.logit_scale_init), dtype=torch.float32)
        self.logit_scale = nn.Parameter(init, requires_grad=settings.learn_logit_scale)
        self.table = table.detach().float()
        # micro-batches per optimizer step (set by the stage): the loop averages step metrics over the
        # micro-batches and the processes, `sea/pairs_per_step` is scaled so that the mean is the total
        self.accumulation = 1

    @torch.no_grad()
    def clamp_(self) -> None:
        """After an optimizer step: 1/tau <= logit_scale_max (open_clip clamps the same way)."""
        self.logit_scale.clamp_(max=math.log(self.settings.logit_scale_max))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp()

    def forward(
        self, visual: torch.Tensor, image_of_row: torch.Tensor, pairs: SeaPairs
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(L_a, metrics) for the sampled pairs (words with tokens only, see `sample_pairs`' `word_ok`);
        `visual` (B_img, N, d) adapter outputs, `image_of_row` (B,) the image index of each batch row.
        No host-device synchronisation in the default (per-device) mode."""
        device = visual.device
        if self.table.device != device:
            self.table = self.table.to(device)
        pairs = pairs.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, enabled=False):
            x = visual[image_of_row[pairs.rows], pairs.patches].float()
            t = self.table[pairs.words]
            scale = self.scale()
            world = _world_size()
            if self.settings.gathers(world):
                loss, n, acc = self._gathered(x, t, pairs.words, pairs.priority, scale)
                per_step = n * self.accumulation  # the same gathered batch on every process
            else:
                n = torch.full((), float(x.shape[0]), device=device)  # a fill, not a host copy
                if x.shape[0] == 0:
                    loss = visual.sum() * 0.0 + scale * 0.0
                    acc = torch.zeros((), device=device)
                else:
                    loss, logits = symmetric_info_nce(x, t, scale)
                    target = torch.arange(x.shape[0], device=device)
                    acc = (logits.argmax(dim=1) == target).float().mean()
                per_step = n * self.accumulation * world
        metrics = {
            "sea/pairs": n.detach(),
            "sea/pairs_per_step": per_step.detach(),
            "sea/logit_scale": scale.detach(),
            "sea/acc": acc.detach(),
        }
        return loss, metrics

    def _gathered(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        words: torch.Tensor,
        priority: torch.Tensor,
        scale: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather the pairs of every process (adapter outputs with gradient), de-duplicate them globally,
        and return this process's share of the loss over the gathered batch."""
        import torch.distributed as dist

        world, rank = dist.get_world_size(), dist.get_rank()
        count = torch.tensor([x.shape[0]], device=x.device)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        sizes = [int(c) for c in counts]

        def gather(v: torch.Tensor, with_grad: bool) -> torch.Tensor:
            parts = _gather_padded(v, sizes[rank], max(sizes), with_grad)
            return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])

        w_all, p_all = gather(words, False), gather(priority, False)
        x_all = gather(x, True)
        keep = torch.ones(len(w_all), dtype=torch.bool)
        if self.settings.dedup:
            keep = torch.zeros(len(w_all), dtype=torch.bool)
            keep[dedup_pairs(w_all.cpu(), p_all.cpu())] = True
        start = sum(sizes[:rank])
        mine = keep[start : start + sizes[rank]].to(x.device)
        offset = int(keep[:start].sum())
        keep = keep.to(x.device)
        x_loc, t_loc = x[mine], t[mine]
        x_all, t_all = x_all[keep], self.table[w_all[keep]]
        total = torch.full((), float(x_all.shape[0]), device=x.device)
        if x_all.shape[0] == 0:
            return x.sum() * 0.0 + scale * 0.0, total, torch.zeros((), device=x.device)
        loss = local_info_nce(x_loc, t_loc, x_all, t_all, offset, scale, world)
        acc = torch.zeros((), device=x.device)
        if x_loc.shape[0]:
            with torch.no_grad():
                logits = F.normalize(x_loc, dim=-1) @ F.normalize(t_all, dim=-1).T
                target = torch.arange(offset, offset + x_loc.shape[0], device=x.device)
                acc = (logits.argmax(dim=1) == target).float().mean()
        return loss + x.sum() * 0.0, total, acc


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
