"""Shared fixtures: offline environment, the tiny config composed into a temp root."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports prefect / mlflow / transformers.
os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    MLFLOW_DISABLE_TELEMETRY="true",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DVC_NO_ANALYTICS="1",
    DO_NOT_TRACK="1",
)
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="sea-prefect-"))
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("SEA_MLFLOW_PARENT_RUN_ID", None)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_overrides(tmp_path: Path) -> list[str]:
    return ["experiment=tiny", f"paths.root={tmp_path / 'out'}"]


@pytest.fixture
def tiny_cfg(tiny_overrides: list[str]):
    from sea.config import compose

    return compose(tiny_overrides)


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect API server (and database) for the tests that need one: ~20 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):  # a busy 2-core machine takes minutes
        yield
