"""Adapter (projector) registry: vision width -> LLM width, LLaVA's `build_vision_projector`.

Types: `linear`, `identity`, `mlp2x_gelu` (LLaVA-1.5: Linear -> GELU -> Linear) and any `mlp{N}x_gelu`.
MLPs are `nn.Sequential`, so state-dict keys are `0.*`, `2.*`, ... as in LLaVA. Files use LLaVA's key
names (`mm_projector.0.weight`, ...); LLaVA's own `mm_projector.bin` (keys `model.mm_projector.*`)
loads as well.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from sea.errors import SeaError

log = logging.getLogger(__name__)

KEY_PREFIX = "mm_projector."
_MLP_RE = re.compile(r"^mlp(\d+)x_gelu$")

AdapterBuilder = Callable[[int, int], nn.Module]
ADAPTERS: dict[str, AdapterBuilder] = {}


def register_adapter(name: str) -> Callable[[AdapterBuilder], AdapterBuilder]:
    """Decorator: register `builder(in_dim, out_dim) -> nn.Module` under `name`."""

    def wrap(builder: AdapterBuilder) -> AdapterBuilder:
        ADAPTERS[name] = builder
        return builder

    return wrap


def mlp_gelu(in_dim: int, out_dim: int, depth: int) -> nn.Sequential:
    """Linear(in -> out), then (GELU, Linear(out -> out)) x (depth - 1)."""
    if depth < 1:
        raise SeaError(f"an mlp adapter needs depth >= 1, got {depth}")
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    for _ in range(depth - 1):
        layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
    return nn.Sequential(*layers)


@register_adapter("linear")
def _linear(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim)


@register_adapter("identity")
def _identity(in_dim: int, out_dim: int) -> nn.Module:
    if in_dim != out_dim:
        raise SeaError(f"the identity adapter needs equal widths, got {in_dim} -> {out_dim}")
    return nn.Identity()


@register_adapter("mlp2x_gelu")
def _mlp2x_gelu(in_dim: int, out_dim: int) -> nn.Module:
    return mlp_gelu(in_dim, out_dim, 2)


def adapter_types() -> list[str]:
    return sorted(ADAPTERS) + ["mlp{N}x_gelu"]


def build_adapter(type: str, in_dim: int, out_dim: int) -> nn.Module:  # noqa: A002 - LLaVA's name
    """Build a registered adapter or an `mlp{N}x_gelu`."""
    if type in ADAPTERS:
        return ADAPTERS[type](int(in_dim), int(out_dim))
    match = _MLP_RE.match(type)
    if match:
        return mlp_gelu(int(in_dim), int(out_dim), int(match.group(1)))
    raise SeaError(f"unknown adapter type '{type}': choose one of {adapter_types()}")


def adapter_dims(adapter: nn.Module) -> tuple[int, int]:
    """(in_dim, out_dim) of an adapter made of Linear layers."""
    linears = [m for m in adapter.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise SeaError(f"cannot infer the widths of adapter {type(adapter).__name__}")
    return linears[0].in_features, linears[-1].out_features


def strip_projector_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys after the last `mm_projector.` (LLaVA's own rule), or unchanged when none has it."""
    if not any(KEY_PREFIX in k for k in state):
        return dict(state)
    return {k.rsplit(KEY_PREFIX, 1)[1]: v for k, v in state.items() if KEY_PREFIX in k}


def infer_adapter_type(state: Mapping[str, torch.Tensor]) -> tuple[str, int, int]:
    """(type, in_dim, out_dim) from an adapter state dict without prefix."""
    if set(state) <= {"weight", "bias"} and "weight" in state:
        w = state["weight"]
        return "linear", int(w.shape[1]), int(w.shape[0])
    idx = sorted({int(k.split(".", 1)[0]) for k in state if k.split(".", 1)[0].isdigit()})
    if not idx or idx != list(range(0, 2 * len(idx), 2)):
        raise SeaError(f"cannot recognise adapter weights with keys {sorted(state)[:6]}...")
    first, last = state[f"{idx[0]}.weight"], state[f"{idx[-1]}.weight"]
    return f"mlp{len(idx)}x_gelu", int(first.shape[1]), int(last.shape[0])


def save_adapter(adapter: nn.Module, path: str | Path, type: str | None = None) -> Path:  # noqa: A002
    """Write the adapter as safetensors with LLaVA key names; type and widths go in the metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {KEY_PREFIX + k: v.detach().contiguous().cpu() for k, v in adapter.state_dict().items()}
    meta = {"format": "pt"}
    if state:
        inferred, in_dim, out_dim = infer_adapter_type(strip_projector_prefix(state))
        meta.update(type=type or inferred, in_dim=str(in_dim), out_dim=str(out_dim))
    save_file(state, str(path), metadata=meta)
    return path


def read_adapter_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict without prefix, metadata) from a `.safetensors` file or a torch `.bin`/`.pt`."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"adapter weights {path} not found")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and "state_dict" in state:
            state = state["state_dict"]
        meta = {}
    return strip_projector_prefix(state), meta


def load_adapter(
    path: str | Path,
    adapter: nn.Module | None = None,
    type: str | None = None,  # noqa: A002
    in_dim: int | None = None,
    out_dim: int | None = None,
    strict: bool = True,
) -> nn.Module:
    """Load adapter weights (ours, or LLaVA's `mm_projector.bin`) into `adapter`, or build one from
    `type`/widths, or from the file's metadata and shapes."""
    state, meta = read_adapter_state(path)
    if adapter is None:
        inferred, i, o = infer_adapter_type(state)
        type = type or meta.get("type") or inferred
        adapter = build_adapter(type, in_dim or i, out_dim or o)
    own = adapter.state_dict()
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if wrong:
        raise SeaError(
            f"adapter weights {path} do not fit (key, file shape, adapter shape): "
            f"{[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong]}"
        )
    ref = next(iter(own.values()), None)
    if ref is not None:
        state = {k: v.to(dtype=ref.dtype) for k, v in state.items()}
    result = adapter.load_state_dict(state, strict=strict)
    if not strict and (result.missing_keys or result.unexpected_keys):
        log.warning(
            "adapter %s: missing %s, unexpected %s", path, result.missing_keys, result.unexpected_keys
        )
    return adapter
