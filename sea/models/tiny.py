"""Tiny random models built offline, for tests and benchmarks.

- `tiny_open_clip_config` / `write_tiny_open_clip`: an open_clip ViT-CLIP config JSON (open_clip's own
  `model_configs/*.json` format) and random weights as safetensors, loadable by `VisionTower.from_config`.
- `tiny_siglip_cfg`: the same for a SigLIP-style open_clip model (timm ViT trunk with an attention-pool
  head, no CLS, a HF text tokenizer), on a grid that does not tile the image (like 27 x 14 < 384).
- `tiny_dinov2_cfg`: random weights of timm's DINOv2 architecture (CLS + register tokens), tiny sizes.
- `tiny_tokenizer(style)`: a byte-level BPE trained on a few sentences, with the special tokens and a chat
  template in the style of an LLM family ('llama' = Llama-2/Vicuna, 'llama3', 'gemma', 'phi3', 'qwen2').
- `tiny_llm` / `save_tiny_llm`: random Llama, Gemma, Phi-3 or Qwen2 causal LMs matching a tokenizer.
- `build_tiny_mllm`: a whole `SeaMLLM` from the above.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

TINY_CLIP_NAME = "tiny-clip-test"
TINY_SIGLIP_NAME = "tiny-siglip-test"
# A timm trunk with SigLIP-SO400M's architecture (class_token=False, global_pool='map') at tiny size;
# open_clip builds timm trunks by name only, so the name is registered with timm.
TINY_SIGLIP_TRUNK = "sea_tiny_siglip_trunk"
TINY_SIGLIP_ARGS = {"img_size": 32, "patch_size": 6, "embed_dim": 32, "depth": 3, "num_heads": 2}
TINY_DINOV2_ARGS = {"img_size": 36, "patch_size": 6, "embed_dim": 32, "depth": 3, "num_heads": 2}

# A few sentences so that the BPE learns merges for the words tests and templates use.
DEFAULT_CORPUS = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "USER: What is the colour of the shape in the image? ASSISTANT: The circle is red.",
    "Is there a blue square? Answer the question using a single word or phrase. Yes. No.",
    "a red circle, a green square, a blue triangle, a yellow star and an orange hexagon on a grey background",
    "Answer with the option's letter from the given choices directly.\nA. B. C. D.",
    "system user assistant model left right top bottom one two three small large purple white black\n\n",
)

_LLAMA3_CHAT = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_GEMMA_CHAT = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_PHI3_CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}"
)
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Special tokens and chat template per tokenizer style (shaped like the real tokenizers, much smaller).
TOKENIZER_STYLES: dict[str, dict[str, Any]] = {
    "llama": {
        "bos": "<s>",
        "eos": "</s>",
        "unk": "<unk>",
        "pad": None,
        "extra": [],
        "chat": None,
        "add_bos": True,
    },
    "llama3": {
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "unk": None,
        "pad": None,
        "extra": ["<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"],
        "chat": _LLAMA3_CHAT,
        "add_bos": True,
    },
    "gemma": {
        "bos": "<bos>",
        "eos": "<eos>",
        "unk": "<unk>",
        "pad": "<pad>",
        "extra": ["<start_of_turn>", "<end_of_turn>"],
        "chat": _GEMMA_CHAT,
        "add_bos": True,
    },
    "phi3": {
        "bos": "<s>",
        "eos": "<|endoftext|>",
        "unk": "<unk>",
        "pad": "<|endoftext|>",
        "extra": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        "chat": _PHI3_CHAT,
        "add_bos": False,
    },
    "qwen2": {
        "bos": None,
        "eos": "<|im_end|>",
        "unk": None,
        "pad": "<|endoftext|>",
        "extra": ["<|endoftext|>", "<|im_start|>"],
        "chat": _CHATML,
        "add_bos": False,
    },
}
FAMILY_STYLE = {"llama": "llama", "gemma": "gemma", "phi3": "phi3", "qwen2": "qwen2"}


# ---- open_clip -----------------------------------------------------------------------------------
def tiny_open_clip_config(
    image_size: int = 32,
    patch_size: int = 8,
    width: int = 32,
    layers: int = 2,
    heads: int = 2,
    mlp_ratio: float = 4.0,
    text_width: int = 32,
    text_layers: int = 1,
    text_heads: int = 2,
    context_length: int = 16,
    embed_dim: int = 16,
    vocab_size: int = 49408,
) -> dict[str, Any]:
    """An open_clip model config (`{"embed_dim", "vision_cfg", "text_cfg"}`); open_clip's vision tower
    takes `head_width` (= width / heads), not a head count."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": image_size,
            "patch_size": patch_size,
            "width": width,
            "layers": layers,
            "head_width": width // heads,
            "mlp_ratio": mlp_ratio,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": vocab_size,
            "width": text_width,
            "heads": text_heads,
            "layers": text_layers,
        },
    }


def write_tiny_open_clip(
    directory: str | Path, name: str = TINY_CLIP_NAME, seed: int = 0, **overrides: Any
) -> tuple[Path, Path]:
    """Write `<name>.json` and random `<name>.safetensors` (a CLIP state dict) into `directory`."""
    return _write_open_clip(directory, name, tiny_open_clip_config(**overrides), seed)


def _write_open_clip(
    directory: str | Path, name: str, config: dict[str, Any], seed: int
) -> tuple[Path, Path]:
    """Register the open_clip `config` as `<name>.json` and write random weights `<name>.safetensors`."""
    import open_clip
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / f"{name}.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    open_clip.add_model_config(config_path)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.create_model(name, pretrained=None)
        _randomise(model)
    weights_path = directory / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights_path))
    return config_path, weights_path


def tiny_vision_cfg(
    directory: str | Path,
    name: str = TINY_CLIP_NAME,
    seed: int = 0,
    select_layer: int = -2,
    select_feature: str = "patch",
    **overrides: Any,
) -> dict[str, Any]:
    """Write a tiny CLIP and return the matching `model.vision` mapping."""
    config_path, weights_path = write_tiny_open_clip(directory, name, seed, **overrides)
    return {
        "name": name,
        "model_config": str(config_path),
        "pretrained": str(weights_path),
        "select_layer": select_layer,
        "select_feature": select_feature,
    }


def register_tiny_timm_models() -> None:
    """Register `TINY_SIGLIP_TRUNK` with timm (idempotent)."""
    import timm
    from timm.models import register_model

    if timm.is_model(TINY_SIGLIP_TRUNK):
        return

    def sea_tiny_siglip_trunk(pretrained: bool = False, **kwargs: Any) -> Any:
        return timm.create_model(
            "vit_so400m_patch14_siglip_384", pretrained=False, **{**TINY_SIGLIP_ARGS, **kwargs}
        )

    register_model(sea_tiny_siglip_trunk)


def _randomise(model: torch.nn.Module) -> None:
    """Libraries leave some tensors at zero/identity (or layer scales at 1e-5); randomise them so tests
    see non-trivial maths."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))


def tiny_siglip_cfg(
    directory: str | Path, seed: int = 0, select_layer: int = -2, select_feature: str = "patch"
) -> dict[str, Any]:
    """Write a tiny SigLIP-style open_clip model (config JSON, random safetensors, its HF tokenizer) and
    return the matching `model.vision` mapping, with SigLIP's preprocessing (squash, mean/std 0.5)."""
    register_tiny_timm_models()
    directory = Path(directory)
    tok_dir = directory / "tokenizer"
    tok = tiny_tokenizer("gemma")
    tok.save_pretrained(tok_dir)
    width = TINY_SIGLIP_ARGS["embed_dim"]
    cfg = {
        "embed_dim": width,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {
            "image_size": TINY_SIGLIP_ARGS["img_size"],
            "timm_model_name": TINY_SIGLIP_TRUNK,
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": len(tok),
            "hf_tokenizer_name": str(tok_dir),
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": width,
            "heads": 2,
            "layers": 1,
            "mlp_ratio": 4.0,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
        },
    }
    config_path, weights_path = _write_open_clip(directory, TINY_SIGLIP_NAME, cfg, seed)
    return {
        "name": TINY_SIGLIP_NAME,
        "model_config": str(config_path),
        "pretrained": str(weights_path),
        "resize_mode": "squash",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "select_layer": select_layer,
        "select_feature": select_feature,
    }


def tiny_dinov2_cfg(
    directory: str | Path,
    seed: int = 0,
    name: str = "vit_large_patch14_reg4_dinov2",
    select_layer: int = -2,
    select_feature: str = "patch",
) -> dict[str, Any]:
    """Write random weights of timm's DINOv2 (`name`; the default has 4 register tokens) at tiny size and
    return the matching `model.vision` mapping (`library: timm`)."""
    import timm
    from safetensors.torch import save_file

    kwargs = {k: v for k, v in TINY_DINOV2_ARGS.items() if k != "img_size"}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, img_size=TINY_DINOV2_ARGS["img_size"], **kwargs)
        _randomise(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / f"{name}-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights_path))
    return {
        "library": "timm",
        "name": name,
        "pretrained": str(weights_path),
        "image_size": TINY_DINOV2_ARGS["img_size"],
        "patch_size": TINY_DINOV2_ARGS["patch_size"],
        "model_kwargs": kwargs,
        "select_layer": select_layer,
        "select_feature": select_feature,
    }


# ---- tokenizers ----------------------------------------------------------------------------------
def tiny_tokenizer(style: str = "llama", corpus: Iterable[str] | None = None, vocab_size: int = 400) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` with the special tokens and chat template of `style`."""
    from transformers import PreTrainedTokenizerFast

    from sea.utils.bpe import train_byte_level_bpe

    spec = TOKENIZER_STYLES[style]
    specials: list[str] = []
    for tok in [spec["unk"], spec["bos"], spec["eos"], spec["pad"], *spec["extra"]]:
        if tok and tok not in specials:
            specials.append(tok)
    bos = spec["bos"] if spec["add_bos"] else None
    backend = train_byte_level_bpe(list(corpus or DEFAULT_CORPUS), vocab_size, specials, 1, bos)
    kwargs = {k + "_token": spec[k] for k in ("bos", "eos", "unk", "pad") if spec[k]}
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    extra = [t for t in spec["extra"] if t not in kwargs.values()]
    if extra:
        tok.add_special_tokens({"additional_special_tokens": extra})
    if spec["chat"]:
        tok.chat_template = spec["chat"]
    return tok


# ---- causal LMs ----------------------------------------------------------------------------------
def tiny_llm_config(
    family: str = "llama",
    vocab_size: int = 400,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    num_key_value_heads: int | None = None,
    intermediate_size: int = 64,
    max_position_embeddings: int = 512,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    tie_word_embeddings: bool = False,
) -> Any:
    """A tiny HF config of `family` ('llama', 'gemma', 'phi3', 'qwen2')."""
    from transformers import GemmaConfig, LlamaConfig, Phi3Config, Qwen2Config

    classes = {"llama": LlamaConfig, "gemma": GemmaConfig, "phi3": Phi3Config, "qwen2": Qwen2Config}
    if family not in classes:
        raise ValueError(f"unknown tiny LLM family '{family}': {sorted(classes)}")
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads or num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    if family == "gemma":
        kwargs["head_dim"] = hidden_size // num_attention_heads
    return classes[family](**kwargs)


def tiny_llm(family: str = "llama", tokenizer: Any = None, seed: int = 0, **config_kwargs: Any) -> Any:
    """A random `*ForCausalLM` of `family`; vocabulary and special ids from `tokenizer` when given."""
    from transformers import AutoModelForCausalLM

    if tokenizer is not None:
        config_kwargs.setdefault("vocab_size", len(tokenizer))
        for key in ("bos", "eos", "pad"):
            config_kwargs.setdefault(f"{key}_token_id", getattr(tokenizer, f"{key}_token_id"))
    config = tiny_llm_config(family, **config_kwargs)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()


def save_tiny_llm(
    directory: str | Path,
    family: str = "llama",
    style: str | None = None,
    seed: int = 0,
    **config_kwargs: Any,
) -> Path:
    """`save_pretrained` a tiny LLM and its tokenizer into `directory` (what `load_llm` reads)."""
    directory = Path(directory)
    tok = tiny_tokenizer(style or FAMILY_STYLE[family])
    model = tiny_llm(family, tok, seed=seed, **config_kwargs)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


# ---- the whole MLLM ------------------------------------------------------------------------------
def build_tiny_mllm(
    directory: str | Path,
    family: str = "llama",
    adapter: str = "mlp2x_gelu",
    max_length: int = 64,
    seed: int = 0,
    clip_overrides: dict[str, Any] | None = None,
    vision_cfg: dict[str, Any] | None = None,
    **llm_kwargs: Any,
) -> Any:
    """A tiny `SeaMLLM` (random CLIP, or the tower `vision_cfg` describes; random LLM of `family`), files
    written under `directory`."""
    from sea.models.adapter import build_adapter
    from sea.models.llm import load_llm
    from sea.models.mllm import SeaMLLM
    from sea.models.vision import VisionTower

    directory = Path(directory)
    vcfg = vision_cfg or tiny_vision_cfg(directory / "clip", seed=seed, **(clip_overrides or {}))
    vision = VisionTower.from_config(vcfg)
    llm_dir = save_tiny_llm(directory / "llm", family, seed=seed, **llm_kwargs)
    llm, tok = load_llm({"name_or_path": str(llm_dir), "max_length": max_length, "family": family})
    with torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        proj = build_adapter(adapter, vision.hidden_size, llm.get_input_embeddings().embedding_dim)
    return SeaMLLM(vision, proj, llm, tok, adapter_type=adapter, max_length=max_length)
