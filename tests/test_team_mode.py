"""Team mode on real servers (slow tier): a local PostgreSQL with two databases, an MLflow tracking server
on one (proxied artifact store in its own folder) and a Prefect server on the other, both on loopback;
the tiny flow runs against them (`tracking=server`, `PREFECT_API_URL`), and the servers hold its runs,
registered models, artifacts and completed flow run, in PostgreSQL (README: team mode)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PG_USER = "sea"  # the database superuser initdb creates (trust auth on loopback only)


def postgres_bin() -> Path | None:
    """The folder of initdb / pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(versions[-1]).parent if versions else None


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all held open while choosing, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def unprivileged() -> list[str]:
    """The command prefix that runs PostgreSQL's tools as a non-root user (postgres refuses root)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.fail("running as root and neither user `postgres` nor `nobody` exists to run PostgreSQL")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(cmd)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict]:
    """A throwaway PostgreSQL on 127.0.0.1 with databases `mlflow` and `prefect`."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    as_user = unprivileged()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as another user.
    home = Path(tempfile.mkdtemp(prefix="sea-pg-", dir="/tmp"))
    if as_user:
        shutil.chown(home, user=as_user[2])
    data, [port] = home / "data", free_ports(1)
    run([*as_user, str(bin_dir / "initdb"), "-D", str(data), f"--username={PG_USER}", "--auth=trust",
         "--encoding=UTF8", "--locale=C"], cwd=home)  # fmt: skip
    run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "postgres.log"), "-w",
         "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {home}", "start"], cwd=home)  # fmt: skip
    psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-tAc"]
    try:
        for db in ("mlflow", "prefect"):
            run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, db])
        yield {"url": f"{PG_USER}@127.0.0.1:{port}", "psql": psql}
    finally:
        stop = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(stop, cwd=home, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[:4]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(postgres: dict, tmp_path_factory) -> Iterator[dict]:
    """`mlflow server` and `prefect server start` on PostgreSQL, as README: team mode starts them."""
    root = tmp_path_factory.mktemp("team")
    mlflow_port, prefect_port = free_ports(2)
    artifacts = root / "mlflow-artifacts"
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{postgres['url']}/prefect",
        "PREFECT_HOME": str(root / "prefect-home"),
    }
    commands = {
        "mlflow": [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"postgresql://{postgres['url']}/mlflow",
            "--artifacts-destination", str(artifacts), "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
        ],
        "prefect": [
            sys.executable, "-m", "prefect", "server", "start",
            "--host", "127.0.0.1", "--port", str(prefect_port), "--no-ui",
        ],
    }  # fmt: skip
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands.items():
            with (root / f"{name}.log").open("w") as log:
                procs[name] = subprocess.Popen(
                    cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        mlflow_url, prefect_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}/api"
        wait_healthy(f"{mlflow_url}/health", procs["mlflow"], root / "mlflow.log")
        wait_healthy(f"{prefect_url}/health", procs["prefect"], root / "prefect.log")
        yield {"mlflow": mlflow_url, "prefect": prefect_url, "artifacts": artifacts, "root": root}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_tracking_server_takes_the_server_from_the_environment(tiny_overrides, monkeypatch) -> None:
    from sea import tracking
    from sea.config import compose

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg, local = compose([*tiny_overrides, "tracking=server"]), compose(tiny_overrides)
    assert tracking.tracking_uri(cfg) == tracking.ui_address(cfg) == "http://127.0.0.1:5000"
    assert {**cfg.tracking, "uri": None} == {**local.tracking}, "tracking=mlflow with a server uri"
    assert tracking.tracking_uri(local).startswith("sqlite:///"), "SQLite stays the default"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    cfg = compose([*tiny_overrides, "tracking=server"])
    assert tracking.tracking_uri(cfg) == tracking.ui_address(cfg) == "http://mlflow.example:5000"


@pytest.mark.slow  # minutes: two servers' database migrations, then the tiny flow
def test_tiny_flow_on_team_servers(servers: dict, postgres: dict) -> None:
    root = servers["root"]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": servers["mlflow"],
        "PREFECT_API_URL": servers["prefect"],
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    stages = "world,backbones,prepare,label,align,instruct"
    flow = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "experiment=tiny", "tracking=server",
         f"paths.root={root / 'out'}", "--arms", "sea", "--stages", stages],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert flow.returncode == 0, flow.stderr[-4000:]
    check_servers(servers, postgres, stages)


def check_servers(servers: dict, postgres: dict, stages: str) -> None:
    """The runs, models and artifacts of one tiny flow run over `stages` (arm sea) are on the servers."""
    from mlflow import MlflowClient

    from sea.tracking import logged_model_id

    root = servers["root"]
    client = MlflowClient(tracking_uri=servers["mlflow"])
    experiment = client.get_experiment_by_name("sea")
    assert experiment is not None, "the tracking server has no experiment `sea`"
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("sea.kind") == "pipeline"]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("sea.kind") == "stage"}
    expected = [*stages.split(",")[:4], "align[sea, seed 0]", "instruct[sea, seed 0]"]
    assert sorted(children) == sorted(expected)
    assert parent.info.status == "FINISHED" and parent.data.tags["sea.stages"] == stages
    for child in children.values():
        assert child.info.status == "FINISHED", child.info.run_name
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert "config.yaml" in {a.path for a in client.list_artifacts(child.info.run_id)}
    align = children["align[sea, seed 0]"]
    assert len(client.get_metric_history(align.info.run_id, "train/loss")) == align.data.metrics["steps"] > 1

    for stage in ("align", "instruct"):
        [version] = client.search_model_versions(f"name='sea-tiny-{stage}-sea'")
        assert version.run_id == children[f"{stage}[sea, seed 0]"].info.run_id
        assert version.tags["sea.arm"] == "sea" and version.tags["sea.seed"] == "0"
        # The version is a LoggedModel of its run, stored in the server's artifact store.
        model_id = logged_model_id(version)
        assert model_id and client.get_logged_model(model_id).source_run_id == version.run_id
        assert list(servers["artifacts"].rglob(f"models/{model_id}/artifacts/MLmodel")), model_id
    assert not list((root / "out").rglob("mlflow.db")), "team mode must not write a local SQLite store"

    def count(db: str, table: str) -> int:
        return int(run([*postgres["psql"], f"select count(*) from {table}", db]).stdout.strip())

    assert count("mlflow", "runs") == len(runs) and count("mlflow", "model_versions") == 2

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: servers["prefect"]}), get_client(sync_client=True) as prefect:
        [flow_run] = prefect.read_flow_runs()
        assert prefect.read_flow(flow_run.flow_id).name == "sea-pipeline"
        assert flow_run.state.is_completed(), flow_run.state
        tasks = prefect.read_task_runs()
        loggers = {entry.name for entry in prefect.read_logs()}
    assert any(name.startswith("sea.") for name in loggers), f"no `sea` log lines on the server: {loggers}"
    assert sorted(t.name.rsplit("-", 1)[0] for t in tasks) == sorted(expected)
    assert all(t.state.is_completed() for t in tasks)
    assert count("prefect", "flow_run") == 1
