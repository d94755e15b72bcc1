"""Configuration: compose `conf/` with Hydra's compose API (as DVC's Hydra integration does), or load
a composed `params.yaml`. No `@hydra.main`: no output folders, no working-directory changes.

`python -m sea.config [FILE]` writes the default composition (the committed `params.yaml`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sea.utils.io import atomic_write_text, sha256_bytes

CONF_DIR = Path(os.environ.get("SEA_CONF_DIR", Path(__file__).resolve().parent.parent / "conf"))


class ConfigError(ValueError):
    """A config that cannot be composed: an unknown group option, a bad override, a missing key."""


def compose(overrides: Sequence[str] = (), conf_dir: str | Path = CONF_DIR) -> DictConfig:
    """Compose `conf/config.yaml` with Hydra overrides and resolve every interpolation."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(
            f"cannot compose config with overrides {list(overrides)}: {_one_line(err)}"
        ) from err
    return cfg


def _one_line(err: Exception) -> str:
    """Hydra's message on one line: 'Could not find 'x/y' (available options in 'x': a, b)'."""
    text = str(err).split("Config search path:")[0]
    head, *rest = [line.strip() for line in text.splitlines() if line.strip()] or [type(err).__name__]
    if rest and rest[0].startswith("Available options"):
        return f"{head} ({rest[0].rstrip(':').lower()}: {', '.join(rest[1:])})"
    return " ".join([head, *rest])


def load_params(path: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Load a composed config file (DVC's `params.yaml`) and apply `key=value` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (generate it with `make params`)")
    cfg = OmegaConf.load(path)
    bad = [o for o in overrides if "=" not in o or o.lstrip("~+").split("=")[0].count("/")]
    if bad:
        raise ConfigError(
            f"with --params only key=value overrides apply (no group choices): {bad}; "
            "compose instead by leaving out --params"
        )
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in overrides]))
        except Exception as err:  # omegaconf raises several unrelated types for bad dotlists
            raise ConfigError(f"bad override in {list(overrides)}: {err}") from err
    OmegaConf.resolve(cfg)
    return cfg


def select(cfg: DictConfig, key: str) -> Any:
    """The plain (resolved) value of a dotted key; a clear error when the key is missing."""
    value = OmegaConf.select(cfg, key, throw_on_missing=True, default=KeyError)
    if value is KeyError:
        raise KeyError(f"config key '{key}' is missing")
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def select_or(cfg: DictConfig, key: str, default: Any = None) -> Any:
    """Like `select`, with `default` for a missing or null key."""
    try:
        value = select(cfg, key)
    except KeyError:
        return default
    return default if value is None else value


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True, sort_keys=False)


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """A plain, JSON-serialisable copy (what crosses process and Prefect boundaries)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def config_hash(cfg: DictConfig | dict) -> str:
    plain = to_plain(cfg) if isinstance(cfg, DictConfig) else cfg
    return sha256_bytes(json.dumps(plain, sort_keys=True, default=str).encode())[:16]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


HEADER = "# GENERATED from conf/ by `make params` (python -m sea.config); do not edit. A test checks it.\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    target = argv[0] if argv else "params.yaml"
    atomic_write_text(target, HEADER + to_yaml(compose(argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
