"""Train a tiny Llama-architecture causal LM on the world's text; save model + tokenizer for `Auto*`.

Text: `corpus.txt` (one sentence a line) and, when `use_instruct`, every question/answer turn of
`instruct.json` rendered as one plain line ("question answer", `<image>` removed). The last
`val_fraction` of the corpus lines is held out (never trained on, not seen by the tokenizer) for the
perplexity. Lines are encoded as `<s> line </s>` and packed into one token stream; training draws
random windows of `seq_len` tokens, validation walks the held-out stream in consecutive windows and
averages the next-token loss over every predicted token.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sea.backbones.common import cosine_lr, require, seed_everything, set_lr
from sea.errors import SeaError
from sea.utils.settings import settings_from

log = logging.getLogger(__name__)

LLM_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_length",
)
IMAGE_PLACEHOLDER = "<image>"
PREFIX_SEP = "\t"


@dataclass(frozen=True)
class LmSettings:
    """`backbones.llm` (conf/backbones/default.yaml explains every value)."""

    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup_steps: int
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    min_lr_ratio: float
    grad_clip: float | None
    val_fraction: float
    use_instruct: bool
    instruct_format: str
    min_frequency: int
    log_every: int
    eval_every: int

    @classmethod
    def from_config(cls, section: Any) -> LmSettings:
        return section if isinstance(section, LmSettings) else settings_from(cls, section, "backbones.llm")


def read_texts(
    world: Path, val_fraction: float, use_instruct: bool, instruct_format: str = "plain"
) -> tuple[list[str], list[str]]:
    """(train lines, held-out lines)."""
    corpus_path = world / "corpus.txt"
    if not corpus_path.is_file():
        raise SeaError(f"{corpus_path}: corpus not found; run the `world` stage first")
    lines = [ln.strip() for ln in corpus_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(lines) < 2:
        raise SeaError(f"{corpus_path}: needs at least two lines (train and held-out), got {len(lines)}")
    n_val = min(len(lines) - 1, max(1, int(round(len(lines) * val_fraction))))
    train, val = lines[: len(lines) - n_val], lines[len(lines) - n_val :]
    if use_instruct and (world / "instruct.json").is_file():
        samples = json.loads((world / "instruct.json").read_text(encoding="utf-8"))
        train = train + instruct_lines(samples, instruct_format)
    return train, val


INSTRUCT_FORMATS = ("plain", "vicuna_v1")


def instruct_lines(samples: list[dict], instruct_format: str = "plain") -> list[str]:
    """`plain`: each human turn with the gpt turn after it, as one line. `vicuna_v1`: each conversation
    as one line in stage 2's vicuna_v1 text (system prompt, `USER:` / `ASSISTANT:` tags, `</s>` after
    every answer but the last, which `pack` closes), the image left out, so the tokenizer and the LM
    know the chat format before stage 2."""
    from sea.data.templates import VICUNA_SYSTEM

    if instruct_format not in INSTRUCT_FORMATS:
        raise SeaError(
            f"backbones.llm.instruct_format must be one of {INSTRUCT_FORMATS}, got {instruct_format!r}"
        )
    out = []
    for sample in samples:
        turns = sample.get("conversations") or []
        pairs = []
        for q, a in zip(turns[::2], turns[1::2], strict=False):
            if q.get("from") != "human" or a.get("from") != "gpt":
                continue
            question = " ".join(q["value"].replace(IMAGE_PLACEHOLDER, " ").split())
            answer = " ".join(a["value"].split())
            if question and answer:
                pairs.append((question, answer))
        if instruct_format == "plain":
            out += [f"{q} {a}" for q, a in pairs]
        elif pairs:
            out.append(VICUNA_SYSTEM + " " + "</s>".join(f"USER: {q} ASSISTANT: {a}" for q, a in pairs))
    return out


def pack(tokenizer: Any, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`<s> line </s>` for every line, concatenated (int64), and which tokens are trained on (bool): all
    but a context prefix, the part of a line before a tab (a scene's patch words), which is read, never
    predicted."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    split = [ln.split(PREFIX_SEP, 1) if PREFIX_SEP in ln else ["", ln] for ln in lines]
    prefixes = tokenizer([p for p, _ in split], add_special_tokens=False)["input_ids"]
    texts = tokenizer([t for _, t in split], add_special_tokens=False)["input_ids"]
    tokens: list[int] = []
    target: list[bool] = []
    for pre, text in zip(prefixes, texts, strict=True):
        tokens += [bos, *pre, *text, eos]
        target += [False] * (1 + len(pre)) + [True] * (len(text) + 1)
    return np.asarray(tokens, dtype=np.int64), np.asarray(target, dtype=bool)


def build_model(lcfg: dict, tokenizer: Any):
    from transformers import LlamaConfig, LlamaForCausalLM

    require(lcfg, LLM_KEYS, "model.llm")
    vocab = int(lcfg["vocab_size"])
    if len(tokenizer) > vocab:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than model.llm.vocab_size ({vocab})")
    heads = int(lcfg["num_attention_heads"])
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=int(lcfg["hidden_size"]),
        intermediate_size=int(lcfg["intermediate_size"]),
        num_hidden_layers=int(lcfg["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(lcfg.get("num_key_value_heads") or heads),
        max_position_embeddings=int(lcfg["max_length"]),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def evaluate_ppl(model: Any, stream: np.ndarray, seq_len: int, batch_size: int = 64) -> tuple[float, int]:
    """(mean next-token loss over the held-out stream, tokens scored), in consecutive windows."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    n_win = max(1, (len(stream) - 1) // seq_len)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, n_win, batch_size):
            rows = []
            for w in range(start, min(n_win, start + batch_size)):
                seg = stream[w * seq_len : w * seq_len + seq_len + 1]
                if len(seg) >= 2:
                    rows.append(torch.from_numpy(seg.copy()))
            if not rows:
                continue
            width = min(len(r) for r in rows)
            x = torch.stack([r[:width] for r in rows])
            logits = model(input_ids=x[:, :-1]).logits
            total += float(
                F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            )
            count += int(x[:, 1:].numel())
    model.train(was_training)
    return total / max(1, count), count


def train_lm(
    world: Path, lcfg: dict, tcfg: dict, seed: int, out: Path, tracker: Any = None
) -> dict[str, float]:
    """Build the tokenizer, train the LM, save both into `out` (HF layout); flat metrics (no prefix)."""
    import torch
    from tqdm import tqdm

    from sea.backbones.tokenizer import build_tokenizer
    from sea.training.optim import ParamGroupSpec, build_optimizer, param_groups

    settings = LmSettings.from_config(tcfg)
    t_start = time.perf_counter()
    train_lines, val_lines = read_texts(
        world, settings.val_fraction, settings.use_instruct, settings.instruct_format
    )
    tokenizer = build_tokenizer(
        train_lines, int(lcfg["vocab_size"]), int(lcfg["max_length"]), settings.min_frequency
    )
    train_stream, train_target = pack(tokenizer, train_lines)
    val_stream, _ = pack(tokenizer, val_lines)
    seq_len = settings.seq_len
    if len(train_stream) <= seq_len + 1:
        raise SeaError(
            f"the LM corpus has {len(train_stream)} tokens, too few for backbones.llm.seq_len={seq_len}"
        )
    t_data = time.perf_counter() - t_start

    seed_everything(seed)
    model = build_model(lcfg, tokenizer)
    model.train()
    steps, batch_size = settings.steps, settings.batch_size
    groups = param_groups([ParamGroupSpec("lm", model)], settings.lr, settings.weight_decay)
    optimizer = build_optimizer(groups, settings.betas, settings.eps)
    schedule = cosine_lr(settings.lr, settings.warmup_steps, steps, settings.min_lr_ratio)
    grad_clip = settings.grad_clip
    log_every, eval_every = max(1, settings.log_every), settings.eval_every
    gen = torch.Generator().manual_seed(seed)
    data, target = torch.from_numpy(train_stream), torch.from_numpy(train_target)
    high = len(train_stream) - seq_len
    curve: list[float] = []
    log.info(
        "lm: %d train lines (%d tokens), %d held-out lines (%d tokens), vocab %d",
        len(train_lines),
        len(train_stream),
        len(val_lines),
        len(val_stream),
        len(tokenizer),
    )

    t_train = time.perf_counter()
    bar = tqdm(range(steps), desc="lm", unit="step", mininterval=2.0)
    for step in bar:
        set_lr(optimizer, schedule(step))
        starts = torch.randint(0, high, (batch_size,), generator=gen)
        x = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        keep = torch.stack([target[s : s + seq_len] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x.masked_fill(~keep, -100)).loss
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"lm: loss is {value} at step {step}; lower backbones.llm.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(grad_clip))
        optimizer.step()
        curve.append(value)
        if step % log_every == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{value:.3f}")
            if tracker is not None:
                tracker.log_metrics({"lm/train_loss": value, "lm/lr": schedule(step)}, step=step)
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps and tracker is not None:
            vl, _ = evaluate_ppl(model, val_stream, seq_len)
            tracker.log_metrics({"lm/val_loss": vl, "lm/val_ppl": math.exp(vl)}, step=step + 1)
    bar.close()
    t_train = time.perf_counter() - t_train

    t_eval = time.perf_counter()
    val_loss, val_tokens = evaluate_ppl(model, val_stream, seq_len)
    t_eval = time.perf_counter() - t_eval
    if tracker is not None:
        tracker.log_metrics({"lm/val_loss": val_loss, "lm/val_ppl": math.exp(val_loss)}, step=steps)

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

    tail = curve[-max(1, min(20, len(curve) // 5)) :]
    unk = tokenizer.unk_token_id
    return {
        "val_loss": val_loss,
        "val_ppl": math.exp(val_loss),
        "val_tokens": float(val_tokens),
        "vocab_size": float(len(tokenizer)),
        "model_vocab_size": float(lcfg["vocab_size"]),
        "unk_rate": float(np.mean(val_stream == unk)) if len(val_stream) else 0.0,
        "first_loss": curve[0] if curve else float("nan"),
        "final_loss": float(np.mean(tail)) if tail else float("nan"),
        "steps": float(steps),
        "train_tokens": float(len(train_stream)),
        "params": float(sum(p.numel() for p in model.parameters())),
        "data_seconds": t_data,
        "train_seconds": t_train,
        "eval_seconds": t_eval,
        "seconds_per_step": t_train / max(1, steps),
    }
