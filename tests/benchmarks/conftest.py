"""The benchmark scripts (benchmarks/*.py) loaded as modules, on one CPU thread."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def bench() -> Callable[[str], ModuleType]:
    """`bench("model_step")`: benchmarks/model_step.py as a module (loaded once)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # train_throughput imports its neighbours

    def load(name: str) -> ModuleType:
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules[name]

    return load


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
