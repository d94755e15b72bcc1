"""Slow tier: Prefect used the way a team uses it. A real `prefect server start` on loopback, the
process work pool and the deployment of `prefect.yaml` (as the README says), a worker that runs one
flow run of the deployment; the flow run completes and its outputs are there."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sea.config import compose
from sea.stages import get_stage
from tests.conftest import REPO

PREFECT = str(Path(sys.executable).parent / "prefect")
POOL, DEPLOYMENT = "sea-gpu", "sea-pipeline/sea-gpu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_cli(env: dict, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run(
        [PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def prefect_server_process(tmp_path: Path):
    """`prefect server start` on a free loopback port, its state in a temp PREFECT_HOME (~16 s idle)."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(1)
        yield {**env, "PREFECT_API_URL": api}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_a_deployment_run_on_the_gpu_work_pool_completes(prefect_server_process: dict, tmp_path: Path):
    env = prefect_server_process
    overrides = ["experiment=tiny", f"paths.root={tmp_path / 'out'}"]
    prefect_cli(env, "work-pool", "create", POOL, "--type", "process")
    prefect_cli(env, "--no-prompt", "deploy", "--all")
    params = {"overrides": overrides, "stages": ["world"]}
    prefect_cli(env, "deployment", "run", DEPLOYMENT, "--params", json.dumps(params))
    worker = subprocess.run(
        [PREFECT, "worker", "start", "--pool", POOL, "--run-once"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr

    with httpx.Client(base_url=env["PREFECT_API_URL"], timeout=30) as api:
        [run] = api.post("/flow_runs/filter", json={}).json()
        deployment = api.get(f"/deployments/name/{DEPLOYMENT}").json()
        tasks = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}).json()
    assert run["deployment_id"] == deployment["id"] and run["parameters"] == params
    assert run["state"]["type"] == "COMPLETED", (run["state"], worker.stdout[-3000:], worker.stderr[-3000:])
    assert [(t["name"].rsplit("-", 1)[0], t["state"]["type"]) for t in tasks] == [("world", "COMPLETED")]
    assert deployment["work_pool_name"] == POOL
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO.resolve())}}
    ]
    cfg = compose(overrides)
    assert json.loads(get_stage("world").metrics_file(cfg).read_text()), "the stage's metrics are written"
    assert get_stage("world").out_dir(cfg).is_dir()
