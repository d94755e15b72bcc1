"""The frozen open_clip vision tower.

Two kinds of patch tokens come out of it:

- `forward(images)`: what the LLM consumes, LLaVA's `feature_select`: the raw hidden state of
  `select_layer` (indexed like HF's `hidden_states`, so -2 is the penultimate block's output and 0 the
  embeddings after `ln_pre`), no `ln_post`; CLS dropped for `select_feature='patch'`.
- `joint_patch_tokens(images, variant)`: patch tokens in CLIP's joint image-text space, for labeling.
  `proj`: last block -> `ln_post` -> `proj` (open_clip's `output_tokens=True` stops before `proj`).
  `maskclip`: MaskCLIP's value path in the last block (value projection of `ln_1(x)`, `out_proj`, no
  query-key attention, no residual, no MLP) -> `ln_post` -> `proj`.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sea.errors import SeaError

log = logging.getLogger(__name__)

SELECT_FEATURES = ("patch", "cls_patch")
JOINT_VARIANTS = ("proj", "maskclip")
CONFIG_FILE = "open_clip_config.json"  # open_clip's `local-dir:` layout
WEIGHTS_FILE = "open_clip_model.safetensors"


def plain(cfg: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig, a Mapping or None."""
    if cfg is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(cfg):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return dict(cfg)


def _tag_cfg(name: str, pretrained: str | None) -> dict[str, Any]:
    """open_clip's config for a pretrained *tag* (empty for a file path or no weights)."""
    import open_clip

    if not pretrained or Path(pretrained).is_file():
        return {}
    return dict(open_clip.get_pretrained_cfg(name, pretrained) or {})


def _weights_hint(name: str, pretrained: str | None, tag_cfg: Mapping[str, Any]) -> str:
    repo = str(tag_cfg.get("hf_hub", "")).strip("/")
    if name.startswith("hf-hub:"):
        repo = name.split(":", 1)[1]
    what = f"pretrained='{pretrained}'" if pretrained else "its weights"
    fetch = f"download them once with network (`huggingface-cli download {repo}`) or " if repo else ""
    return (
        f"open_clip model '{name}' with {what} is not available (offline, or not downloaded yet): "
        f"{fetch}point model.vision.pretrained at a local checkpoint file (for the embedded default run the "
        "`backbones` stage first)."
    )


class VisionTower(nn.Module):
    """Any open_clip ViT, frozen: `requires_grad` off, always in eval mode, forwards under no_grad."""

    def __init__(
        self,
        clip: nn.Module,
        *,
        name: str,
        model_cfg: Mapping[str, Any],
        preprocess: Callable[[Any], torch.Tensor],
        tokenizer: Callable[[Sequence[str]], torch.Tensor],
        select_layer: int = -2,
        select_feature: str = "patch",
    ) -> None:
        super().__init__()
        from open_clip.transformer import VisionTransformer

        visual = getattr(clip, "visual", None)
        if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None:
            raise SeaError(
                f"open_clip model '{name}': only ViT towers without attentional pooling are supported "
                f"(got {type(visual).__name__})"
            )
        if select_feature not in SELECT_FEATURES:
            raise SeaError(
                f"model.vision.select_feature must be one of {SELECT_FEATURES}, got '{select_feature}'"
            )
        self.clip = clip
        self.name = name
        self.model_cfg = copy.deepcopy(dict(model_cfg))
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.select_layer = int(select_layer)
        self.select_feature = select_feature
        self._hidden_index(self.select_layer)  # validate early
        self.clip.requires_grad_(False)
        self.train(False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, vcfg: Any, device: str | torch.device = "cpu", precision: str = "fp32"
    ) -> VisionTower:
        """Build from `model.vision`: register `model_config` (if set), then create the open_clip model
        with `pretrained` (a local file or a hub tag such as 'openai')."""
        import open_clip

        c = plain(vcfg)
        name = str(c["name"])
        pretrained = c.get("pretrained") or None
        if c.get("model_config"):
            path = Path(c["model_config"])
            if not path.is_file():
                raise SeaError(
                    f"open_clip model config {path} not found: run the `backbones` stage, or set "
                    "model.vision.model_config to an open_clip config JSON"
                )
            if path.stem != name:
                raise SeaError(
                    f"model.vision.name '{name}' must be the file stem of model.vision.model_config "
                    f"'{path.name}' (open_clip registers a config under its file name)"
                )
            open_clip.add_model_config(path)
        schema = name.split(":", 1)[0] if name.startswith(("hf-hub:", "local-dir:")) else None
        if schema:
            pretrained = None  # open_clip takes the weights from the schema's source
        tag_cfg: dict[str, Any] = {}
        force_quick_gelu = False
        if schema is None:
            base_cfg = open_clip.get_model_config(name)
            if base_cfg is None:
                raise SeaError(
                    f"unknown open_clip model '{name}': set model.vision.model_config to its config JSON, "
                    "or use one of open_clip.list_models()"
                )
            if pretrained and not Path(pretrained).is_file():
                tag_cfg = _tag_cfg(name, pretrained)
                if not tag_cfg:
                    raise SeaError(
                        f"open_clip weights '{pretrained}' for model '{name}' not found: neither a file "
                        f"nor a known tag (tags: {open_clip.list_pretrained_tags_by_model(name)}). Run the "
                        "`backbones` stage or set model.vision.pretrained"
                    )
            if tag_cfg.get("quick_gelu") and not base_cfg.get("quick_gelu"):
                log.warning(
                    "open_clip '%s' weights '%s' were trained with QuickGELU: using it (as '%s-quickgelu')",
                    name,
                    pretrained,
                    name,
                )
                force_quick_gelu = True
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=pretrained,
                device=device,
                precision=precision,
                force_quick_gelu=force_quick_gelu,
            )
            tokenizer = open_clip.get_tokenizer(name)
            model_cfg = open_clip.get_model_config(name)
        except (RuntimeError, OSError, ValueError) as err:
            raise SeaError(
                f"{_weights_hint(name, pretrained, tag_cfg)} ({type(err).__name__}: {err})"
            ) from err
        if force_quick_gelu:
            model_cfg["quick_gelu"] = True
        tower = cls(
            model,
            name=name,
            model_cfg=model_cfg,
            preprocess=preprocess,
            tokenizer=tokenizer,
            select_layer=c.get("select_layer", -2),
            select_feature=c.get("select_feature", "patch"),
        )
        tower._check_geometry(c)
        return tower

    def _check_geometry(self, c: Mapping[str, Any]) -> None:
        """Config keys `image_size` / `patch_size`, when given, must match the built model."""
        for key, actual in (("image_size", self.image_size), ("patch_size", self.patch_size)):
            want = c.get(key)
            if want is None:
                continue
            want_t = tuple(want) if isinstance(want, list | tuple) else (int(want), int(want))
            if want_t != tuple(actual):
                raise SeaError(
                    f"model.vision.{key}={want} but open_clip model '{self.name}' has {key} {actual}"
                )

    def save(self, directory: str | Path) -> Path:
        """Write open_clip's `local-dir:` layout: `open_clip_config.json` (model + preprocess config) and
        `open_clip_model.safetensors` (the whole CLIP state dict, text tower included)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        pp = {k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocess_cfg.items()}
        meta = {"model_cfg": self.model_cfg, "preprocess_cfg": pp, "sea_name": self.name}
        (directory / CONFIG_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        state = {k: v.detach().contiguous().cpu() for k, v in self.clip.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        select_layer: int = -2,
        select_feature: str = "patch",
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> VisionTower:
        """Load a tower written by `save` (no registry, no network)."""
        import open_clip

        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise SeaError(f"{directory}: not a saved vision tower ({CONFIG_FILE} + {WEIGHTS_FILE} expected)")
        meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        ref = f"local-dir:{directory}"
        model, _, preprocess = open_clip.create_model_and_transforms(ref, device=device, precision=precision)
        text_cfg = meta["model_cfg"].get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name"):
            tokenizer = open_clip.get_tokenizer(meta.get("sea_name", ref))
        else:
            tokenizer = open_clip.get_tokenizer(ref)
        return cls(
            model,
            name=meta.get("sea_name", ref),
            model_cfg=meta["model_cfg"],
            preprocess=preprocess,
            tokenizer=tokenizer,
            select_layer=select_layer,
            select_feature=select_feature,
        )

    # ---- frozen behaviour ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> VisionTower:
        """Always eval (no patch dropout): the tower is frozen."""
        return super().train(False)

    # ---- geometry -----------------------------------------------------------------------------
    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols)."""
        return tuple(self.visual.grid_size)  # type: ignore[return-value]

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def num_tokens(self) -> int:
        """Tokens per image that `forward` returns (patches, plus CLS for 'cls_patch')."""
        return self.num_patches + (self.select_feature == "cls_patch")

    @property
    def hidden_size(self) -> int:
        return int(self.visual.transformer.width)

    @property
    def embed_dim(self) -> int:
        return int(self.visual.output_dim)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.visual.image_size)  # type: ignore[return-value]

    @property
    def patch_size(self) -> tuple[int, int]:
        return tuple(self.visual.patch_size)  # type: ignore[return-value]

    @property
    def num_layers(self) -> int:
        return len(self.visual.transformer.resblocks)

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        return dict(getattr(self.visual, "preprocess_cfg", {}) or {})

    def preprocess_signature(self) -> dict[str, Any]:
        """What must match between labeling and training for patch indices to agree (JSON-able)."""
        pp = self.preprocess_cfg
        return {
            "model": self.name,
            "image_size": list(self.image_size),
            "patch_size": list(self.patch_size),
            "mean": [float(x) for x in pp.get("mean", ())],
            "std": [float(x) for x in pp.get("std", ())],
            "interpolation": pp.get("interpolation"),
            "resize_mode": pp.get("resize_mode"),
            "fill_color": pp.get("fill_color"),
        }

    # ---- features -----------------------------------------------------------------------------
    def _hidden_index(self, layer: int) -> int:
        """`hidden_states` index (0 = embeddings, n = last block) for a LLaVA-style layer number."""
        n = self.num_layers
        idx = layer if layer >= 0 else n + 1 + layer
        if not 0 <= idx <= n:
            raise SeaError(f"vision select_layer {layer} out of range for a {n}-layer tower")
        return idx

    def hidden_state(self, images: torch.Tensor, layer: int) -> torch.Tensor:
        """Raw hidden state (CLS first, no `ln_post`) at a LLaVA-style layer: (B, 1 + N, width)."""
        idx = self._hidden_index(layer)
        x = images.to(device=self.device, dtype=self.dtype)
        if idx == 0:
            return self.visual._embeds(x)
        out = self.visual.forward_intermediates(
            x,
            indices=[idx - 1],
            stop_early=True,
            intermediates_only=True,
            output_fmt="NLC",
            output_extra_tokens=True,
        )
        return torch.cat([out["image_intermediates_prefix"][0], out["image_intermediates"][0]], dim=1)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens the LLM consumes: (B, N, width), N = patches (+1 with 'cls_patch')."""
        h = self.hidden_state(images, self.select_layer)
        return h[:, 1:] if self.select_feature == "patch" else h

    @torch.no_grad()
    def joint_patch_tokens(self, images: torch.Tensor, variant: str = "proj") -> torch.Tensor:
        """Patch tokens in the joint image-text space: (B, N, embed_dim), not normalised."""
        if variant == "proj":
            h = self.hidden_state(images, -1)
        elif variant == "maskclip":
            h = _maskclip_value_path(self.visual.transformer.resblocks[-1], self.hidden_state(images, -2))
        else:
            raise SeaError(f"joint patch token variant must be one of {JOINT_VARIANTS}, got '{variant}'")
        h = self.visual.ln_post(h[:, 1:])
        return h @ self.visual.proj if self.visual.proj is not None else h

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's pooled image embedding, L2-normalised: (B, embed_dim)."""
        return self.clip.encode_image(images.to(device=self.device, dtype=self.dtype), normalize=True)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
        """CLIP text embeddings with the model's own tokenizer, L2-normalised: (q, embed_dim)."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            chunks.append(self.clip.encode_text(tokens, normalize=True))
        if not chunks:
            return torch.empty(0, self.embed_dim, device=self.device, dtype=self.dtype)
        return torch.cat(chunks)


def _maskclip_value_path(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's dense feature in one residual block: out_proj(v_proj(ln_1(x))), layer scale kept;
    no query-key attention, no residual, no MLP."""
    attn = block.attn
    if not isinstance(attn, nn.MultiheadAttention) or not hasattr(block, "ln_1"):
        raise SeaError(
            f"the 'maskclip' variant needs nn.MultiheadAttention blocks, got {type(attn).__name__}"
        )
    d = attn.embed_dim
    if attn._qkv_same_embed_dim:
        w_v = attn.in_proj_weight[2 * d :]
    else:
        w_v = attn.v_proj_weight
    b_v = attn.in_proj_bias[2 * d :] if attn.in_proj_bias is not None else None
    v = F.linear(block.ln_1(x), w_v, b_v)
    return block.ls_1(attn.out_proj(v))
