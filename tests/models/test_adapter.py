"""Adapter registry, LLaVA key names, loading LLaVA's mm_projector.bin."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from torch import nn

from sea.errors import SeaError
from sea.models.adapter import ADAPTERS, build_adapter, infer_adapter_type, load_adapter, save_adapter


def test_registry_and_shapes() -> None:
    assert {"linear", "mlp2x_gelu", "identity"} <= set(ADAPTERS)
    mlp = build_adapter("mlp2x_gelu", 8, 12)
    assert isinstance(mlp, nn.Sequential)
    assert [type(m) for m in mlp] == [nn.Linear, nn.GELU, nn.Linear]
    assert sorted(mlp.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert mlp(torch.zeros(2, 5, 8)).shape == (2, 5, 12)
    deep = build_adapter("mlp3x_gelu", 8, 12)
    assert sorted(deep.state_dict()) == [f"{i}.{p}" for i in (0, 2, 4) for p in ("bias", "weight")]
    assert deep[2].in_features == 12
    lin = build_adapter("linear", 8, 12)
    assert sorted(lin.state_dict()) == ["bias", "weight"]
    with pytest.raises(SeaError, match="unknown adapter"):
        build_adapter("mlp2x_relu", 8, 12)


def test_save_uses_llava_key_names_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    mlp = build_adapter("mlp2x_gelu", 8, 12)
    path = save_adapter(mlp, tmp_path / "adapter.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert sorted(f.keys()) == [f"mm_projector.{k}" for k in ("0.bias", "0.weight", "2.bias", "2.weight")]
        assert f.metadata()["type"] == "mlp2x_gelu"
    again = load_adapter(path)  # type and widths from the file
    x = torch.randn(3, 8)
    torch.testing.assert_close(again(x), mlp(x))
    into = build_adapter("mlp2x_gelu", 8, 12)
    load_adapter(path, into)
    torch.testing.assert_close(into(x), mlp(x))


def test_llava_mm_projector_bin_loads(tmp_path) -> None:
    """LLaVA saves `mm_projector.bin` with `model.mm_projector.*` keys (torch.save of a state dict)."""
    torch.manual_seed(1)
    mlp = build_adapter("mlp2x_gelu", 8, 12)
    torch.save(
        {f"model.mm_projector.{k}": v for k, v in mlp.state_dict().items()}, tmp_path / "mm_projector.bin"
    )
    loaded = load_adapter(tmp_path / "mm_projector.bin")
    x = torch.randn(3, 8)
    torch.testing.assert_close(loaded(x), mlp(x))
    lin = build_adapter("linear", 8, 12)
    torch.save({f"model.mm_projector.{k}": v for k, v in lin.state_dict().items()}, tmp_path / "linear.bin")
    assert isinstance(load_adapter(tmp_path / "linear.bin"), nn.Linear)


def test_infer_and_mismatch(tmp_path) -> None:
    state = build_adapter("mlp3x_gelu", 4, 6).state_dict()
    assert infer_adapter_type(state) == ("mlp3x_gelu", 4, 6)
    path = save_adapter(build_adapter("mlp2x_gelu", 8, 12), tmp_path / "a.safetensors")
    with pytest.raises(SeaError, match="do not fit"):
        load_adapter(path, build_adapter("mlp2x_gelu", 8, 16))
    with pytest.raises(SeaError, match="not found"):
        load_adapter(tmp_path / "missing.safetensors")
