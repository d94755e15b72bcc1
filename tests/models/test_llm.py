"""load_llm with the real backbone configs (weights swapped for tiny random ones), and its errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from sea.config import CONF_DIR, compose
from sea.errors import SeaError
from sea.models.llm import FAMILY_MODEL_TYPES, is_local_reference, load_llm
from sea.models.tiny import save_tiny_llm

# config file -> (tokenizer style of the tiny stand-in, expected model_type)
REAL_CONFIGS = {
    "vicuna_7b": ("llama", "llama"),
    "gemma_2b": ("gemma", "gemma"),
    "llama3_8b_instruct": ("llama3", "llama"),
    "phi3_mini": ("phi3", "phi3"),
    "qwen2_5_0_5b": ("qwen2", "qwen2"),
}


@pytest.mark.parametrize("name", sorted(REAL_CONFIGS))
def test_real_config_loads_a_tiny_stand_in(name: str, tmp_path: Path) -> None:
    style, model_type = REAL_CONFIGS[name]
    cfg = compose([f"model/llm={name}"])
    lcfg = cfg.model.llm
    assert lcfg.family in FAMILY_MODEL_TYPES and lcfg.max_length == 2048 and lcfg.trust_remote_code is False
    assert lcfg.template == ("vicuna_v1" if name == "vicuna_7b" else "chat")
    assert "/" in lcfg.name_or_path and not is_local_reference(lcfg.name_or_path)
    save_tiny_llm(tmp_path / "llm", lcfg.family, style=style)
    cfg = compose([f"model/llm={name}", f"model.llm.name_or_path={tmp_path / 'llm'}"])
    model, tok = load_llm(cfg.model.llm)
    assert model.config.model_type == model_type
    assert tok.pad_token_id is not None and tok.model_max_length == 2048 and tok.padding_side == "right"
    if lcfg.template == "chat":
        text = tok.apply_chat_template(
            [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
        )
        assert "hi" in text
    ids = tok("a red circle", return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))


def test_dtype_is_applied(llm_dir: Path) -> None:
    model, _ = load_llm({"name_or_path": str(llm_dir)}, torch_dtype="bfloat16")
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16


def test_missing_local_folder_is_a_clear_error(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(SeaError, match="backbones") as info:
        load_llm({"name_or_path": str(tmp_path / "nope" / "llm")})
    assert str(tmp_path / "nope" / "llm") in str(info.value)
    assert time.monotonic() - start < 5


def test_the_default_tiny_llm_before_the_backbones_stage(tmp_path: Path) -> None:
    cfg = compose([f"paths.root={tmp_path}"])
    with pytest.raises(SeaError, match="backbones"):
        load_llm(cfg.model.llm)


def test_absent_hub_model_offline_is_a_clear_error() -> None:
    start = time.monotonic()
    with pytest.raises(SeaError) as info:
        load_llm({"name_or_path": "sea-tests/definitely-not-cached-model"})
    msg = str(info.value)
    assert "sea-tests/definitely-not-cached-model" in msg and "huggingface-cli download" in msg
    assert "name_or_path" in msg
    assert time.monotonic() - start < 10


def test_every_llm_config_file_has_the_keys() -> None:
    for path in sorted((Path(CONF_DIR) / "model" / "llm").glob("*.yaml")):
        cfg = compose([f"model/llm={path.stem}"]).model.llm
        for key in ("name_or_path", "family", "template", "max_length", "trust_remote_code"):
            assert key in cfg, (path.name, key)
