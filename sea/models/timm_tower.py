"""timm ViTs as vision towers: `TimmTower` (DINOv2, no text tower) and the timm-ViT maths that
`OpenClipTower` also uses for its timm trunks (SigLIP).

- `timm_hidden_state(trunk, x, idx)`: HF-style `hidden_states[idx]` of a timm `VisionTransformer`
  (0 = the embeddings after `norm_pre`, k = block k's raw output; prefix tokens first), the same
  computation as timm's `forward_intermediates`.
- `timm_value_path(block, x)`: MaskCLIP's value path in a timm `Block`.
- `timm_token_head(trunk, tokens)`: the trunk's pooling head applied to every token on its own (final
  `norm`, then an attention-pool head with the token as its only key, `fc_norm`, `head`).

`TimmTower` reads `model.vision` keys `name` (a timm model, e.g. 'vit_large_patch14_dinov2.lvd142m'),
`pretrained` (`hub`: timm's hub weights; a local .safetensors/.pth file; null: random), `image_size`
(the input size the model is built for; timm resamples the position embedding of the weights),
`model_kwargs` (more `timm.create_model` arguments), `resize_mode` (`shortest` or `squash`, over
timm's own crop) and the LLaVA selection keys. Its preprocessing is timm's eval transform for the
weights (`resolve_model_data_config` at the tower's input size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sea.errors import SeaError
from sea.models.vision import (
    VisionTower,
    hub_download_hint,
    read_saved_config,
    require_cached_offline,
    save_config_and_weights,
)

CONFIG_FILE = "timm_config.json"
WEIGHTS_FILE = "timm_model.safetensors"
HUB = "hub"
# `resize_mode` (open_clip's words, what label transfer compares) <-> timm's crop_mode / crop_pct.
TIMM_RESIZE = {"shortest": ("center", 1.0), "squash": ("squash", 1.0)}


def check_timm_vit(trunk: nn.Module, name: str) -> None:
    from timm.models.vision_transformer import VisionTransformer

    if not isinstance(trunk, VisionTransformer):
        raise SeaError(
            f"model '{name}': only timm VisionTransformer trunks are supported (got {type(trunk).__name__})"
        )


def timm_hidden_state(trunk: nn.Module, x: torch.Tensor, idx: int) -> torch.Tensor:
    """(B, prefix + N, width): the embeddings (idx 0) or block idx's output, no final norm."""
    x = trunk.norm_pre(trunk.patch_drop(trunk._pos_embed(trunk.patch_embed(x))))
    for block in trunk.blocks[:idx]:
        x = block(x)
    return x


def timm_value_path(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's dense feature in a timm Block: ls1(proj(norm(v(norm1(x))))), i.e. the block's attention
    with every token attending only to itself; no residual, no MLP."""
    attn = block.attn
    qkv = getattr(attn, "qkv", None)
    if not isinstance(qkv, nn.Linear) or getattr(attn, "gate", None) is not None:
        raise SeaError(
            f"the 'maskclip' variant needs a fused qkv projection without gate, got {type(attn).__name__}"
        )
    d = qkv.out_features // 3
    bias = qkv.bias[2 * d :] if qkv.bias is not None else None
    v = F.linear(block.norm1(x), qkv.weight[2 * d :], bias)
    return block.ls1(attn.proj(attn.norm(v)))


def _pool_one_token(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's `AttentionPoolLatent` with each token as its only key (softmax over one key = 1): value,
    output projection, then the head's MLP residual."""
    if getattr(pool, "latent_len", 1) != 1:
        raise SeaError(f"attention-pool heads with {pool.latent_len} latents are not supported")
    if pool.pos_embed is not None:
        raise SeaError("attention-pool heads with a position embedding are not supported")
    d = pool.kv.out_features // 2
    bias = pool.kv.bias[d:] if pool.kv.bias is not None else None
    x = pool.proj(F.linear(x, pool.kv.weight[d:], bias))
    return x + pool.mlp(pool.norm(x)) if pool.mlp is not None else x


def timm_token_head(trunk: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The pooling head of `trunk` on every token on its own: (B, N, width) -> (B, N, head width)."""
    x = trunk.norm(tokens)
    if getattr(trunk, "attn_pool", None) is not None:
        x = _pool_one_token(trunk.attn_pool, x)
    return trunk.head(trunk.fc_norm(x))


class TimmTower(VisionTower):
    """A timm ViT (DINOv2) without text tower: features for the LLM only; labels come from a teacher."""

    library = "timm"

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str,
        model_cfg: dict[str, Any],
        data_cfg: dict[str, Any],
        select_layer: int = -2,
        select_feature: str = "patch",
    ) -> None:
        from timm.data import create_transform

        check_timm_vit(model, name)
        super().__init__(
            name=name,
            preprocess=create_transform(**data_cfg, is_training=False),
            select_layer=select_layer,
            select_feature=select_feature,
        )
        self.visual = model
        self.model_cfg = dict(model_cfg)
        self.data_cfg = dict(data_cfg)
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        self.has_cls = model.cls_token is not None
        self._finish_init()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def _build(cls, c: dict[str, Any], device: str | torch.device, precision: str) -> TimmTower:
        import timm

        name = str(c["name"])
        pretrained = c.get("pretrained")
        if pretrained not in (None, HUB) and not Path(str(pretrained)).is_file():
            raise SeaError(
                f"model.vision.pretrained '{pretrained}' for timm model '{name}' not found: a local "
                f"weights file, '{HUB}' (timm's hub weights) or null"
            )
        if not timm.is_model(name):
            raise SeaError(f"unknown timm model '{name}' (see timm.list_models())")
        kwargs = dict(c.get("model_kwargs") or {})
        if c.get("image_size") is not None:
            kwargs["img_size"] = c["image_size"]
        model_cfg = {"name": name, "kwargs": kwargs, "resize_mode": c.get("resize_mode")}
        what = f"timm model '{name}' with pretrained='{HUB}'"
        if pretrained == HUB:
            hub = timm.models.get_pretrained_cfg(name)
            repo = getattr(hub, "hf_hub_id", None) if hub is not None else None
            require_cached_offline(repo, ("model.safetensors", "pytorch_model.bin"), what)
        overlay = {"file": str(pretrained)} if pretrained not in (None, HUB) else None
        try:
            model = timm.create_model(
                name, pretrained=pretrained is not None, pretrained_cfg_overlay=overlay, **kwargs
            )
        except (RuntimeError, OSError, ValueError) as err:
            if pretrained != HUB:
                raise SeaError(f"timm model '{name}' from {pretrained}: {type(err).__name__}: {err}") from err
            raise SeaError(f"{hub_download_hint(what, repo)} ({type(err).__name__}: {err})") from err
        return cls._finish_build(
            model, model_cfg, c.get("select_layer", -2), c.get("select_feature", "patch"), device, precision
        )

    @classmethod
    def _finish_build(
        cls,
        model: nn.Module,
        model_cfg: dict[str, Any],
        select_layer: int,
        select_feature: str,
        device: Any,
        precision: str,
        data_cfg: dict[str, Any] | None = None,
    ) -> TimmTower:
        """Move `model` to `device` / `precision` and wrap it; `data_cfg` (a saved tower's) or timm's data
        config of the weights at the model's input size, with `resize_mode` applied."""
        from timm.data import resolve_model_data_config

        mode = model_cfg.get("resize_mode")
        if data_cfg is not None:
            data_cfg = dict(data_cfg)
        else:
            data_cfg = resolve_model_data_config(model)
            data_cfg["input_size"] = (3, *model.patch_embed.img_size)  # the weights' default size otherwise
        if mode is not None:
            if mode not in TIMM_RESIZE:
                raise SeaError(
                    f"model.vision.resize_mode for timm must be one of {sorted(TIMM_RESIZE)}, got '{mode}'"
                )
            data_cfg["crop_mode"], data_cfg["crop_pct"] = TIMM_RESIZE[mode]
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        if dtype is None:
            raise SeaError(f"vision tower precision must be fp32, fp16 or bf16, got '{precision}'")
        model = model.to(device=device, dtype=dtype)
        return cls(
            model,
            name=model_cfg["name"],
            model_cfg=model_cfg,
            data_cfg=data_cfg,
            select_layer=select_layer,
            select_feature=select_feature,
        )

    def save(self, directory: str | Path) -> Path:
        """`timm_config.json` (timm name, build kwargs, preprocessing) and `timm_model.safetensors`."""
        meta = {"model_cfg": self.model_cfg, "data_cfg": self.data_cfg}
        return save_config_and_weights(directory, CONFIG_FILE, meta, WEIGHTS_FILE, self.visual)

    @classmethod
    def _load(
        cls, directory: Path, select_layer: int, select_feature: str, device: Any, precision: str
    ) -> TimmTower:
        import timm
        from safetensors.torch import load_file

        meta = read_saved_config(directory, CONFIG_FILE, WEIGHTS_FILE)
        mc = meta["model_cfg"]
        model = timm.create_model(mc["name"], pretrained=False, **mc["kwargs"])
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
        return cls._finish_build(model, mc, select_layer, select_feature, device, precision, meta["data_cfg"])

    # ---- geometry -----------------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.visual.patch_embed.grid_size)  # type: ignore[return-value]

    @property
    def hidden_size(self) -> int:
        return int(self.visual.embed_dim)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.visual.patch_embed.img_size)  # type: ignore[return-value]

    @property
    def patch_size(self) -> tuple[int, int]:
        return tuple(self.visual.patch_embed.patch_size)  # type: ignore[return-value]

    @property
    def num_layers(self) -> int:
        return len(self.visual.blocks)

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        """timm's data config in open_clip's words (`resize_mode`: 'shortest' for a full centre crop,
        'squash', or timm's crop_mode with its crop_pct)."""
        d = self.data_cfg
        view = {v: k for k, v in TIMM_RESIZE.items()}.get((d.get("crop_mode"), float(d.get("crop_pct", 1.0))))
        return {
            "size": list(d["input_size"][1:]),
            "mean": list(d["mean"]),
            "std": list(d["std"]),
            "interpolation": d.get("interpolation"),
            "resize_mode": view or f"{d.get('crop_mode')}(crop_pct={d.get('crop_pct')})",
            "fill_color": None,
        }

    # ---- features -----------------------------------------------------------------------------
    def hidden_state(self, images: torch.Tensor, layer: int) -> torch.Tensor:
        """Raw hidden state (CLS and registers first, no final norm): (B, prefix + N, width)."""
        idx = self._hidden_index(layer)
        return timm_hidden_state(self.visual, images.to(device=self.device, dtype=self.dtype), idx)

    def _no_text(self, what: str) -> SeaError:
        return SeaError(
            f"vision tower '{self.name}' has no text tower, so no {what}: its labels come from a CLIP "
            "teacher (set label.teacher, e.g. `+model/vision@label.teacher=clip_l14_336`)"
        )

    def joint_patch_tokens(self, images: torch.Tensor, variant: str = "proj") -> torch.Tensor:
        raise self._no_text("joint image-text space")

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise self._no_text("image-text embedding")

    def encode_text(self, texts: Any, batch_size: int = 1024) -> torch.Tensor:
        raise self._no_text("text embedding")
