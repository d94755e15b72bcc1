"""The frozen vision towers: LLaVA's patch features for the LLM, CLIP's joint space for labeling.

`VisionTower` holds what every tower shares (frozen, LLaVA's `feature_select`, geometry checks) and
builds the right kind from `model.vision` (`library`, default `open_clip`):

- `OpenClipTower` (this module): an open_clip CLIP whose image tower is open_clip's own ViT (CLIP) or
  a timm ViT trunk (SigLIP, e.g. 'ViT-SO400M-14-SigLIP-384'); it has a text tower, so it can label.
- `TimmTower` (`sea.models.timm_tower`): a timm ViT without text tower (DINOv2); its labels come from
  a CLIP teacher on another patch grid (`label.teacher`, `sea.labeling.transfer`).

Two kinds of patch tokens come out of a tower:

- `forward(images)`: what the LLM consumes, LLaVA's `feature_select`: the raw hidden state of
  `select_layer` (indexed like HF's `hidden_states`, so -2 is the penultimate block's output and 0 the
  embeddings before the first block), no final norm; the prefix tokens (CLS, registers) dropped for
  `select_feature='patch'`, only the registers for 'cls_patch'.
- `joint_patch_tokens(images, variant)`: patch tokens in CLIP's joint image-text space, for labeling.
  `proj`: the last block's tokens through the pooling head, one token at a time (open_clip ViT:
  `ln_post` -> `proj`, what `output_tokens=True` gives before `proj`; SigLIP: the attention-pool head
  with the token as its only key). `maskclip`: MaskCLIP's value path in the last block (value
  projection of the normed input, output projection, no query-key attention, no residual, no MLP),
  then the same head.
"""

from __future__ import annotations

import copy
import importlib
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
RESIZE_MODES = ("shortest", "longest", "squash")
CONFIG_FILE = "open_clip_config.json"  # open_clip's `local-dir:` layout
WEIGHTS_FILE = "open_clip_model.safetensors"
# `model.vision.library` -> the tower class ("module:Class"), and the config file its `save` writes.
LIBRARIES = {
    "open_clip": ("sea.models.vision:OpenClipTower", CONFIG_FILE),
    "timm": ("sea.models.timm_tower:TimmTower", "timm_config.json"),
}


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


def _tower_class(library: str) -> type[VisionTower]:
    if library not in LIBRARIES:
        raise SeaError(f"model.vision.library must be one of {sorted(LIBRARIES)}, got '{library}'")
    module, name = LIBRARIES[library][0].split(":")
    return getattr(importlib.import_module(module), name)


def hub_download_hint(what: str, repo: str | None) -> str:
    """The one-line advice when hub weights are missing offline."""
    fetch = f"download them once with network (`huggingface-cli download {repo}`) or " if repo else ""
    return (
        f"{what} is not available (offline, or not downloaded yet): {fetch}point model.vision.pretrained "
        "at a local checkpoint file (for the embedded default run the `backbones` stage first)."
    )


def require_cached_offline(repo: str | None, filenames: Sequence[str], what: str) -> None:
    """Offline (HF_HUB_OFFLINE), fail at once when none of `filenames` of hub `repo` is in the local
    cache, instead of building a large random model first and failing on the download."""
    from huggingface_hub import constants, try_to_load_from_cache

    if not repo or not constants.HF_HUB_OFFLINE:
        return
    if not any(isinstance(try_to_load_from_cache(repo, f), str) for f in filenames):
        raise SeaError(hub_download_hint(what, repo))


def save_config_and_weights(
    directory: str | Path, config_file: str, meta: dict[str, Any], weights_file: str, module: nn.Module
) -> Path:
    """`directory/config_file` (JSON `meta`) and `directory/weights_file` (`module`'s state dict)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / config_file).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    save_file(state, str(directory / weights_file))
    return directory


def read_saved_config(directory: Path, config_file: str, weights_file: str) -> dict[str, Any]:
    """The JSON `save_config_and_weights` wrote, after checking both files are there."""
    if not (directory / config_file).is_file() or not (directory / weights_file).is_file():
        raise SeaError(f"{directory}: not a saved vision tower ({config_file} + {weights_file} expected)")
    return json.loads((directory / config_file).read_text(encoding="utf-8"))


class VisionTower(nn.Module):
    """A frozen vision tower: `requires_grad` off, always in eval mode, `forward` under no_grad.

    Subclasses provide the model-specific parts: `hidden_state`, `joint_patch_tokens`, `encode_text`,
    `encode_image`, the geometry properties, `preprocess_cfg`, `model_cfg`, `save` and `_load`/`_build`.
    """

    library = ""
    num_prefix_tokens = 1  # tokens before the patches in `hidden_state` (CLS, registers)
    has_cls = True
    trainable = False  # `unfreeze` sets it

    def __init__(
        self,
        *,
        name: str,
        preprocess: Callable[[Any], torch.Tensor],
        select_layer: int = -2,
        select_feature: str = "patch",
    ) -> None:
        super().__init__()
        if select_feature not in SELECT_FEATURES:
            raise SeaError(
                f"model.vision.select_feature must be one of {SELECT_FEATURES}, got '{select_feature}'"
            )
        self.name = name
        self.preprocess = preprocess
        self.select_layer = int(select_layer)
        self.select_feature = select_feature

    def _finish_init(self) -> None:
        """Validate the selection against the built model, then freeze it."""
        if self.select_feature == "cls_patch" and not self.has_cls:
            raise SeaError(
                f"model.vision.select_feature 'cls_patch' needs a CLS token; '{self.name}' has none "
                "(use 'patch')"
            )
        self._hidden_index(self.select_layer)
        self.requires_grad_(False)
        self.train(False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, vcfg: Any, device: str | torch.device = "cpu", precision: str = "fp32"
    ) -> VisionTower:
        """Build the tower `model.vision` names (`library`: open_clip or timm), then check the config's
        `image_size` / `patch_size` against it."""
        c = plain(vcfg)
        tower = _tower_class(str(c.get("library") or "open_clip"))._build(c, device, precision)
        tower._check_geometry(c)
        return tower

    @classmethod
    def load(
        cls,
        directory: str | Path,
        select_layer: int = -2,
        select_feature: str = "patch",
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> VisionTower:
        """Load a tower written by `save` (no registry, no network); the kind is read off the files."""
        directory = Path(directory)
        for library, (_, config_file) in LIBRARIES.items():
            if (directory / config_file).is_file():
                return _tower_class(library)._load(directory, select_layer, select_feature, device, precision)
        raise SeaError(
            f"{directory}: not a saved vision tower (one of {[f for _, f in LIBRARIES.values()]} expected)"
        )

    @classmethod
    def _build(cls, c: dict[str, Any], device: str | torch.device, precision: str) -> VisionTower:
        raise NotImplementedError

    @classmethod
    def _load(
        cls, directory: Path, select_layer: int, select_feature: str, device: Any, precision: str
    ) -> VisionTower:
        raise NotImplementedError

    def _check_geometry(self, c: Mapping[str, Any]) -> None:
        """Config keys `image_size` / `patch_size`, when given, must match the built model."""
        for key, actual in (("image_size", self.image_size), ("patch_size", self.patch_size)):
            want = c.get(key)
            if want is None:
                continue
            want_t = tuple(want) if isinstance(want, list | tuple) else (int(want), int(want))
            if want_t != tuple(actual):
                raise SeaError(f"model.vision.{key}={want} but model '{self.name}' has {key} {actual}")

    # ---- frozen behaviour ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> VisionTower:
        """Always eval (no patch dropout): the tower is frozen."""
        return super().train(False)

    # ---- geometry -----------------------------------------------------------------------------
    @property
    def num_patches(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def num_tokens(self) -> int:
        """Tokens per image that `forward` returns (patches, plus CLS for 'cls_patch')."""
        return self.num_patches + (self.select_feature == "cls_patch")

    @property
    def dtype(self) -> torch.dtype:
        return next(self.visual.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.visual.parameters()).device

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

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """LLaVA's `feature_select` of `select_layer` (with autograd, for a tower that trains)."""
        h = self.hidden_state(images, self.select_layer)
        patches = h[:, self.num_prefix_tokens :]
        return patches if self.select_feature == "patch" else torch.cat([h[:, :1], patches], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens the LLM consumes: (B, N, width), N = patches (+1 with 'cls_patch'); under no_grad
        unless the image tower trains (`unfreeze`)."""
        if self.trainable:
            return self.features(images)
        with torch.no_grad():
            return self.features(images)

    def unfreeze(self) -> None:
        """Let the image tower train (stage 2 with `instruct.tune.vision`): its parameters take gradients
        and `forward` keeps the graph. It stays in eval mode; a text tower stays frozen."""
        self.visual.requires_grad_(True)
        self.trainable = True


class OpenClipTower(VisionTower):
    """An open_clip CLIP (image and text tower) whose image tower is open_clip's ViT or a timm ViT trunk
    (`TimmModel`: SigLIP) without open_clip's attentional pooling."""

    library = "open_clip"

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
        super().__init__(
            name=name, preprocess=preprocess, select_layer=select_layer, select_feature=select_feature
        )
        from open_clip.timm_model import TimmModel
        from open_clip.transformer import VisionTransformer

        visual = getattr(clip, "visual", None)
        if isinstance(visual, TimmModel):
            from sea.models.timm_tower import check_timm_vit

            check_timm_vit(visual.trunk, name)
        elif not isinstance(visual, VisionTransformer) or visual.attn_pool is not None:
            raise SeaError(
                f"open_clip model '{name}': only ViT towers (open_clip's own without attentional pooling, "
                f"or a timm ViT trunk) are supported (got {type(visual).__name__})"
            )
        self.clip = clip
        self.model_cfg = copy.deepcopy(dict(model_cfg))
        self.tokenizer = tokenizer
        if self.trunk is not None:
            self.num_prefix_tokens = int(self.trunk.num_prefix_tokens)
            self.has_cls = bool(self.trunk.cls_token is not None)
        self._finish_init()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def _build(cls, c: dict[str, Any], device: str | torch.device, precision: str) -> OpenClipTower:
        """Register `model_config` (if set), then create the open_clip model with `pretrained` (a local
        file or a hub tag such as 'openai'). `resize_mode`, `mean`, `std`, `interpolation`, when set,
        override the preprocessing's (a teacher can so see the student's view of an image)."""
        import open_clip

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
        resize_mode = c.get("resize_mode")
        if resize_mode is not None and resize_mode not in RESIZE_MODES:
            raise SeaError(f"model.vision.resize_mode must be one of {RESIZE_MODES}, got '{resize_mode}'")
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
            _register_timm_trunk(base_cfg)
            if pretrained and not Path(pretrained).is_file():
                tag_cfg = dict(open_clip.get_pretrained_cfg(name, pretrained) or {})
                if not tag_cfg:
                    raise SeaError(
                        f"open_clip weights '{pretrained}' for model '{name}' not found: neither a file "
                        f"nor a known tag (tags: {open_clip.list_pretrained_tags_by_model(name)}). Run the "
                        "`backbones` stage or set model.vision.pretrained"
                    )
                require_cached_offline(*_open_clip_hub_files(tag_cfg), _what(name, pretrained))
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
                image_mean=c.get("mean"),
                image_std=c.get("std"),
                image_interpolation=c.get("interpolation"),
                image_resize_mode=resize_mode,
            )
            tokenizer = open_clip.get_tokenizer(name)
            model_cfg = open_clip.get_model_config(name)
        except (RuntimeError, OSError, ValueError) as err:
            repo = _open_clip_hub_files(tag_cfg)[0] or (name.split(":", 1)[1] if schema == "hf-hub" else None)
            raise SeaError(
                f"{hub_download_hint(_what(name, pretrained), repo)} ({type(err).__name__}: {err})"
            ) from err
        if force_quick_gelu:
            model_cfg["quick_gelu"] = True
        return cls(
            model,
            name=name,
            model_cfg=model_cfg,
            preprocess=preprocess,
            tokenizer=tokenizer,
            select_layer=c.get("select_layer", -2),
            select_feature=c.get("select_feature", "patch"),
        )

    def save(self, directory: str | Path) -> Path:
        """Write open_clip's `local-dir:` layout: `open_clip_config.json` (model + preprocess config),
        `open_clip_model.safetensors` (the whole CLIP state dict, text tower included) and, for a HF text
        tokenizer (SigLIP), its files (open_clip reads them from the folder)."""
        pp = {k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocess_cfg.items()}
        meta = {"model_cfg": self.model_cfg, "preprocess_cfg": pp, "sea_name": self.name}
        directory = save_config_and_weights(directory, CONFIG_FILE, meta, WEIGHTS_FILE, self.clip)
        hf_tokenizer = getattr(self.tokenizer, "tokenizer", None)
        if hasattr(hf_tokenizer, "save_pretrained"):
            hf_tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def _load(
        cls, directory: Path, select_layer: int, select_feature: str, device: Any, precision: str
    ) -> OpenClipTower:
        import open_clip

        meta = read_saved_config(directory, CONFIG_FILE, WEIGHTS_FILE)
        _register_timm_trunk(meta["model_cfg"])
        ref = f"local-dir:{directory}"
        model, _, preprocess = open_clip.create_model_and_transforms(ref, device=device, precision=precision)
        text_cfg = meta["model_cfg"].get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name") and not (directory / "tokenizer_config.json").is_file():
            tokenizer = open_clip.get_tokenizer(meta.get("sea_name", ref))  # saved without its tokenizer
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

    # ---- geometry -----------------------------------------------------------------------------
    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    @property
    def trunk(self) -> nn.Module | None:
        """The timm ViT of a timm-trunk image tower (SigLIP); None for open_clip's own ViT."""
        return getattr(self.visual, "trunk", None)

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, cols)."""
        if self.trunk is not None:
            return tuple(self.trunk.patch_embed.grid_size)  # type: ignore[return-value]
        return tuple(self.visual.grid_size)  # type: ignore[return-value]

    @property
    def hidden_size(self) -> int:
        return int(self.trunk.embed_dim if self.trunk is not None else self.visual.transformer.width)

    @property
    def embed_dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def image_size(self) -> tuple[int, int]:
        if self.trunk is not None:
            return tuple(self.trunk.patch_embed.img_size)  # type: ignore[return-value]
        return tuple(self.visual.image_size)  # type: ignore[return-value]

    @property
    def patch_size(self) -> tuple[int, int]:
        if self.trunk is not None:
            return tuple(self.trunk.patch_embed.patch_size)  # type: ignore[return-value]
        return tuple(self.visual.patch_size)  # type: ignore[return-value]

    @property
    def num_layers(self) -> int:
        return len(self.trunk.blocks if self.trunk is not None else self.visual.transformer.resblocks)

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        return dict(getattr(self.visual, "preprocess_cfg", {}) or {})

    # ---- features -----------------------------------------------------------------------------
    def hidden_state(self, images: torch.Tensor, layer: int) -> torch.Tensor:
        """Raw hidden state (prefix tokens first, no final norm) at a LLaVA-style layer:
        (B, prefix + N, width)."""
        idx = self._hidden_index(layer)
        x = images.to(device=self.device, dtype=self.dtype)
        if self.trunk is not None:
            from sea.models.timm_tower import timm_hidden_state

            return timm_hidden_state(self.trunk, x, idx)
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
    def joint_patch_tokens(self, images: torch.Tensor, variant: str = "proj") -> torch.Tensor:
        """Patch tokens in the joint image-text space: (B, N, embed_dim), not normalised."""
        if variant not in JOINT_VARIANTS:
            raise SeaError(f"joint patch token variant must be one of {JOINT_VARIANTS}, got '{variant}'")
        p = self.num_prefix_tokens
        if self.trunk is not None:
            from sea.models.timm_tower import timm_token_head, timm_value_path

            if variant == "proj":
                h = self.hidden_state(images, -1)
            else:
                h = timm_value_path(self.trunk.blocks[-1], self.hidden_state(images, -2))
            return self.visual.head(timm_token_head(self.trunk, h[:, p:]))
        if variant == "proj":
            h = self.hidden_state(images, -1)
        else:
            h = _maskclip_value_path(self.visual.transformer.resblocks[-1], self.hidden_state(images, -2))
        h = self.visual.ln_post(h[:, p:])
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


def _what(name: str, pretrained: str | None) -> str:
    return f"open_clip model '{name}' with " + (f"pretrained='{pretrained}'" if pretrained else "its weights")


def _open_clip_hub_files(tag_cfg: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """The hub repo and the weight files open_clip would fetch for a pretrained tag (its `hf_hub` is
    'org/repo/' for the default files or 'org/repo/file.bin'); (None, ()) when it downloads otherwise."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    hub = str(tag_cfg.get("hf_hub") or "")
    if not hub or tag_cfg.get("file"):
        return None, ()
    repo, filename = hub.rsplit("/", 1)
    if not filename:
        return repo, (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
    stem, ext = filename.rsplit(".", 1) if "." in filename else (filename, "")
    return repo, (filename, f"{stem}.safetensors") if ext in ("bin", "pth") else (filename,)


def _register_timm_trunk(model_cfg: Mapping[str, Any]) -> None:
    """The tiny test trunks (`sea.models.tiny`) are timm models this project registers itself."""
    timm_name = str((model_cfg.get("vision_cfg") or {}).get("timm_model_name") or "")
    if timm_name:
        from sea.models.tiny import register_tiny_timm_models

        register_tiny_timm_models()


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
