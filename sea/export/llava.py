"""Export a saved `SeaMLLM` to transformers' `LlavaForConditionalGeneration` + `LlavaProcessor`.

What maps how:

- open_clip ViT tower -> `CLIPVisionModel`: `conv1` -> `embeddings.patch_embedding`, `class_embedding`,
  `positional_embedding` -> `embeddings.position_embedding`, `ln_pre` -> `pre_layrnorm`, each
  `transformer.resblocks.i` -> `encoder.layers.i` (`attn.in_proj` split into `q/k/v_proj`,
  `attn.out_proj`, `ln_1/ln_2` -> `layer_norm1/2`, `mlp.c_fc/c_proj` -> `mlp.fc1/fc2`), `ln_post` ->
  `post_layernorm`; `hidden_act` quick_gelu or gelu after the tower's MLP. `select_layer` ->
  `vision_feature_layer` (both index hidden states with the embeddings at 0); `select_feature` 'patch'
  -> strategy 'default' (drop CLS), 'cls_patch' -> 'full'.
- `mlp2x_gelu` adapter (`mm_projector.0/2`) -> `multi_modal_projector.linear_1/linear_2` (gelu).
- the LLM as is (its decoder and head modules are reused); the tokenizer gets the `<image>` token, and
  the embedding matrices grow by a row only when the vocabulary has no spare one (new rows: the mean
  row, so the image token never wins a greedy step).
- preprocessing: open_clip's resize ('shortest' + centre crop, or 'squash'), mean/std and interpolation
  -> `LlavaImageProcessor`; `image_aspect_ratio='pad'` -> `do_pad` (LLaVA's `expand2square` with the
  mean colour). Its PIL backend (`AutoProcessor.from_pretrained(out, backend="pil")`) gives our pixels
  exactly; the default torchvision backend resizes tensors and is off by up to one 8-bit level.
- the chat template reproduces ours (`sea.export.chat`); `generation_config.eos_token_id` holds the
  template's end-of-turn ids.

What cannot map is refused with a SeaError (timm towers, SigLIP trunks, other adapters, layer scale,
open_clip attention variants) and the mapped tower's features are checked against ours before writing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sea.errors import SeaError
from sea.data.llava import IMAGE_TOKEN

log = logging.getLogger(__name__)

ADAPTER_TYPE = "mlp2x_gelu"
ASPECT_RATIOS = ("pad", "none")
FEATURE_TOLERANCE = 1e-4  # max |ours - HF| of the tower features, relative to their largest magnitude
_RESAMPLE = {"bicubic": 3, "bilinear": 2, "nearest": 0}  # PIL.Image.Resampling values


# ------------------------------------------------------------------------------------------ tower
def _check_open_clip_vit(tower: Any) -> nn.Module:
    """The open_clip `VisionTransformer` of `tower`, or SeaError naming what HF's CLIP cannot express."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    from sea.models.vision import OpenClipTower

    name = getattr(tower, "name", type(tower).__name__)
    if not isinstance(tower, OpenClipTower) or tower.trunk is not None:
        raise SeaError(
            f"vision tower '{name}' ({type(tower).__name__}, library {tower.library!r}) cannot be exported: "
            "only open_clip's own ViT (CLIP) maps onto transformers' CLIPVisionModel"
        )
    visual = tower.visual
    if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None:
        raise SeaError(
            f"vision tower '{name}': only open_clip ViTs without attentional pooling can be exported"
        )
    if isinstance(visual.ln_pre, nn.Identity):
        raise SeaError(f"vision tower '{name}' has no ln_pre (no_ln_pre): CLIPVisionModel always applies one")
    for i, block in enumerate(visual.transformer.resblocks):
        where = f"vision tower '{name}' block {i}"
        if not isinstance(block.attn, nn.MultiheadAttention) or not block.attn._qkv_same_embed_dim:
            raise SeaError(f"{where}: attention {type(block.attn).__name__} has no CLIP equivalent")
        extras = {"ls_1": block.ls_1, "ls_2": block.ls_2, "ln_attn": getattr(block, "ln_attn", None)}
        extras["mlp.ln"] = getattr(block.mlp, "ln", None)
        extra = [k for k, m in extras.items() if m is not None and not isinstance(m, nn.Identity)]
        if extra or hasattr(block, "ln_1_kv"):
            raise SeaError(f"{where}: {extra or ['ln_1_kv']} (layer scale, extra norms): no CLIP equivalent")
        act = block.mlp.gelu
        if not isinstance(act, QuickGELU | nn.GELU) or getattr(act, "approximate", "none") != "none":
            raise SeaError(f"{where}: activation {act!r} is neither GELU nor QuickGELU")
    return visual


def clip_vision_model(tower: Any) -> Any:
    """A transformers `CLIPVisionModel` (fp32) holding the weights of `tower`'s open_clip ViT."""
    from open_clip.transformer import QuickGELU
    from transformers import CLIPVisionConfig, CLIPVisionModel

    visual = _check_open_clip_vit(tower)
    blocks = visual.transformer.resblocks
    (size, size_w), (patch, patch_w) = tower.image_size, tower.patch_size
    if size != size_w or patch != patch_w:
        raise SeaError(f"vision tower '{tower.name}': CLIPVisionModel needs square images and patches")
    first = blocks[0]
    config = CLIPVisionConfig(
        hidden_size=tower.hidden_size,
        intermediate_size=first.mlp.c_fc.out_features,
        num_hidden_layers=len(blocks),
        num_attention_heads=first.attn.num_heads,
        image_size=size,
        patch_size=patch,
        num_channels=visual.conv1.in_channels,
        hidden_act="quick_gelu" if isinstance(first.mlp.gelu, QuickGELU) else "gelu",
        layer_norm_eps=visual.ln_pre.eps,
        projection_dim=tower.embed_dim,
    )
    state = {
        "embeddings.patch_embedding.weight": visual.conv1.weight,
        "embeddings.class_embedding": visual.class_embedding,
        "embeddings.position_embedding.weight": visual.positional_embedding,
        "pre_layrnorm.weight": visual.ln_pre.weight,
        "pre_layrnorm.bias": visual.ln_pre.bias,
        "post_layernorm.weight": visual.ln_post.weight,
        "post_layernorm.bias": visual.ln_post.bias,
    }
    for i, block in enumerate(blocks):
        p = f"encoder.layers.{i}."
        for proj, w, b in zip(
            ("q_proj", "k_proj", "v_proj"),
            block.attn.in_proj_weight.chunk(3),
            block.attn.in_proj_bias.chunk(3),
            strict=True,
        ):
            state[p + f"self_attn.{proj}.weight"], state[p + f"self_attn.{proj}.bias"] = w, b
        pairs = {
            "self_attn.out_proj": block.attn.out_proj,
            "layer_norm1": block.ln_1,
            "layer_norm2": block.ln_2,
            "mlp.fc1": block.mlp.c_fc,
            "mlp.fc2": block.mlp.c_proj,
        }
        for hf, module in pairs.items():
            state[p + hf + ".weight"], state[p + hf + ".bias"] = module.weight, module.bias
        for ln in (block.ln_1, block.ln_2):
            if ln.eps != config.layer_norm_eps:
                raise SeaError(f"vision tower '{tower.name}' block {i}: mixed LayerNorm eps ({ln.eps})")
    model = CLIPVisionModel(config)
    state = {k: v.detach().to(torch.float32).clone() for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise SeaError(
            f"vision tower '{tower.name}': CLIP weights missing {missing}, unexpected {unexpected}"
        )
    return model.eval()


# ------------------------------------------------------------------------------------------ processor
def image_processor(tower: Any, image_aspect_ratio: str) -> Any:
    """`LlavaImageProcessor` doing what the tower's open_clip preprocessing (after LLaVA's optional
    pad-to-square) does."""
    from transformers import LlavaImageProcessor

    if image_aspect_ratio not in ASPECT_RATIOS:
        raise SeaError(f"image_aspect_ratio must be one of {ASPECT_RATIOS}, got {image_aspect_ratio!r}")
    pp = tower.preprocess_cfg
    size = pp.get("size", tower.image_size)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    mode, interp = pp.get("resize_mode", "shortest"), pp.get("interpolation", "bicubic")
    if interp not in _RESAMPLE:
        raise SeaError(
            f"vision tower '{tower.name}': interpolation {interp!r} has no image-processor equivalent"
        )
    if mode == "shortest" and h == w:
        resize = {"size": {"shortest_edge": h}, "do_center_crop": True}
    elif mode == "squash":
        resize = {"size": {"height": h, "width": w}, "do_center_crop": False}
    else:
        raise SeaError(
            f"vision tower '{tower.name}': resize_mode {mode!r} at size {size} has no image-processor "
            "equivalent (supported: 'shortest' on a square size, 'squash')"
        )
    return LlavaImageProcessor(
        **resize,
        crop_size={"height": h, "width": w},
        resample=_RESAMPLE[interp],
        image_mean=[float(x) for x in pp["mean"]],
        image_std=[float(x) for x in pp["std"]],
        do_pad=image_aspect_ratio == "pad",
        do_convert_rgb=True,
    )


def add_image_token(tokenizer: Any) -> int:
    """Add `<image>` as a special token (if absent); its id."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))


def fit_vocabulary(llm: Any, size: int) -> None:
    """Grow the LLM's embeddings (and untied head) to `size` rows when smaller; new rows are the mean row."""
    old = llm.get_input_embeddings().weight.shape[0]
    if size <= old:
        return
    llm.resize_token_embeddings(size, mean_resizing=False)
    with torch.no_grad():
        for module in {id(m): m for m in (llm.get_input_embeddings(), llm.get_output_embeddings())}.values():
            if module is not None:
                module.weight[old:] = module.weight[:old].mean(dim=0, keepdim=True)
                bias = getattr(module, "bias", None)
                if bias is not None:
                    bias[old:] = bias[:old].mean()


# ------------------------------------------------------------------------------------------ model
def _assemble(mllm: Any, vision: Any, config: Any) -> Any:
    """`LlavaForConditionalGeneration` built on the meta device, then given real modules: the HF vision
    tower, the projector (our adapter's weights) and the LLM's own decoder and head."""
    from transformers import LlavaForConditionalGeneration

    llm = mllm.llm
    decoder = getattr(llm, llm.base_model_prefix)
    head = llm.get_output_embeddings()
    others = [n for n, m in llm.named_children() if m is not decoder and m is not head]
    if others:
        raise SeaError(f"the LLM ({type(llm).__name__}) has modules besides its decoder and head: {others}")
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = vision
    model.model.language_model = decoder
    model.lm_head = head
    proj = model.model.multi_modal_projector
    for hf, ours in (("linear_1", mllm.adapter[0]), ("linear_2", mllm.adapter[2])):
        setattr(proj, hf, nn.Linear(ours.in_features, ours.out_features).to(ours.weight.dtype))
        getattr(proj, hf).load_state_dict(ours.state_dict())
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise SeaError(f"export left tensors unset (transformers' Llava changed?): {meta[:5]}")
    return model.eval()


@torch.no_grad()
def _check_features(mllm: Any, model: Any, config: Any) -> float:
    """Max relative difference of the selected tower features (ours vs HF's) on a random image."""
    tower = mllm.vision
    g = torch.Generator().manual_seed(0)
    images = torch.randn(1, 3, *tower.image_size, generator=g)
    ours = tower(images).float()
    out = model.model.vision_tower(images.float(), output_hidden_states=True)
    theirs = out.hidden_states[config.vision_feature_layer]
    if config.vision_feature_select_strategy == "default":
        theirs = theirs[:, 1:]
    if theirs.shape != ours.shape:
        raise SeaError(f"exported tower gives features {tuple(theirs.shape)}, ours {tuple(ours.shape)}")
    err = float((theirs - ours).abs().max() / ours.abs().max().clamp_min(1e-6))
    if err > FEATURE_TOLERANCE:
        raise SeaError(
            f"the exported CLIP tower's features differ from ours (relative error {err:.2e}); not exported"
        )
    return err


def export_llava(
    src: str | Path,
    out: str | Path,
    template: str | None = None,
    image_aspect_ratio: str = "pad",
) -> Path:
    """Write a transformers LLaVA folder (model, processor, chat template) at `out` from the saved
    SeaMLLM at `src`. `template`: our conversation template (default: the LLM's chat template when its
    tokenizer has one, else vicuna_v1); `image_aspect_ratio`: as in training ('pad' in LLaVA-1.5)."""
    from transformers import GenerationConfig, LlavaConfig, LlavaProcessor

    from sea.data.templates import end_of_turn_ids
    from sea.export.chat import default_template, llava_chat_template
    from sea.models.mllm import SeaMLLM
    from sea.utils.io import atomic_dir

    src, out = Path(src), Path(out)
    if out.resolve() == src.resolve():
        raise SeaError(f"{out}: the export must not overwrite its source")
    mllm = SeaMLLM.load(src)
    if mllm.adapter_type != ADAPTER_TYPE:
        raise SeaError(
            f"{src}: adapter type {mllm.adapter_type!r} cannot be exported: LLaVA's multi_modal_projector "
            f"is {ADAPTER_TYPE} (linear_1 -> gelu -> linear_2)"
        )
    tokenizer = mllm.tokenizer
    if tokenizer is None:
        raise SeaError(f"{src}: the saved LLM has no tokenizer")
    template = template or default_template(tokenizer)
    try:
        stop_ids = end_of_turn_ids(tokenizer, template)
    except ValueError as err:
        raise SeaError(f"template {template!r}: {err}") from None
    chat_template = llava_chat_template(tokenizer, template, IMAGE_TOKEN)
    processor_images = image_processor(mllm.vision, image_aspect_ratio)
    vision = clip_vision_model(mllm.vision)

    image_token_id = add_image_token(tokenizer)
    fit_vocabulary(mllm.llm, len(tokenizer))
    dtype = mllm.llm.get_input_embeddings().weight.dtype
    strategy = "default" if mllm.vision.select_feature == "patch" else "full"
    config = LlavaConfig(
        vision_config=vision.config,
        text_config=mllm.llm.config,
        image_token_index=image_token_id,
        image_seq_length=mllm.vision.num_tokens,
        projector_hidden_act="gelu",
        vision_feature_layer=mllm.vision.select_layer,
        vision_feature_select_strategy=strategy,
        multimodal_projector_bias=True,
    )
    model = _assemble(mllm, vision, config)
    err = _check_features(mllm, model, config)
    log.info("exported tower features match ours (max relative difference %.1e)", err)
    model.to(dtype)
    model.generation_config = GenerationConfig(
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        do_sample=False,
    )
    processor = LlavaProcessor(
        image_processor=processor_images,
        tokenizer=tokenizer,
        patch_size=mllm.vision.patch_size[0],
        vision_feature_select_strategy=strategy,
        chat_template=chat_template,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
    )
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    log.info("exported %s -> %s (template %s, %d image tokens)", src, out, template, config.image_seq_length)
    return out
