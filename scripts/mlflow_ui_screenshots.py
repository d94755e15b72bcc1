"""Screenshots of the MLflow UI over a pipeline's store, taken with headless Chromium (Debian's
`chromium` package) driven through its DevTools protocol: what README's MLflow click path shows.

    python -m flows.pipeline experiment=tiny paths.root=/tmp/sea-ui          # a store to look at
    .venv/bin/python scripts/mlflow_ui_screenshots.py /tmp/sea-ui/mlflow docs/mlflow_ui

Starts `mlflow ui` on the store's SQLite database (a free port on 127.0.0.1) and Chromium, opens the
pages a user clicks through, and writes one PNG per page to OUT: the experiment's runs (parent run
expanded to its stage runs), the two arms' `align` runs in the chart view and in the compare page, a
stage run's page, the experiment's Models tab (logged models), a logged model's page, the model
registry and a version.
Needs no network. Exit status 1 with a one-line error when a page does not show what it should.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from websockets.sync.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"mlflow_ui_screenshots: {url} did not answer within {seconds:.0f} s"
                ) from None
            time.sleep(1)


class Browser:
    """One Chromium tab, driven through the DevTools protocol."""

    def __init__(self, chromium: str, width: int, height: int) -> None:
        self.profile = tempfile.mkdtemp(prefix="sea-chromium-")
        port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Debian's `chromium` is a shell script: end its whole group
        )  # fmt: skip
        pages = json.loads(wait_http(f"http://127.0.0.1:{port}/json/list", 60))
        page = next(p for p in pages if p["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.next_id = 0
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def open(self, url: str, shows: str, seconds: float = 90) -> None:
        """Go to `url` and wait until the page's text contains `shows`."""
        self.call("Page.navigate", url=url)
        self.wait_text(shows, seconds, url)

    def wait_text(self, text: str, seconds: float, where: str) -> None:
        deadline = time.monotonic() + seconds
        while not self.js(f"document.body && document.body.innerText.includes({json.dumps(text)})"):
            if time.monotonic() > deadline:
                raise SystemExit(f"mlflow_ui_screenshots: {where} never showed {text!r}")
            time.sleep(0.5)
        time.sleep(2)  # charts and tables finish drawing

    def click(self, selector: str, where: str, seconds: float = 10, required: bool = True) -> None:
        """Click the first element matching `selector` once there is one."""
        deadline = time.monotonic() + seconds
        while not self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                          " if (!e) return false; e.click(); return true; })()"):  # fmt: skip
            if time.monotonic() > deadline:
                if required:
                    raise SystemExit(f"mlflow_ui_screenshots: {where}: nothing matches {selector!r}")
                return
            time.sleep(0.5)

    def expand(self, index: int, child: str) -> None:
        """Open the `index`-th parent run of the runs table (newest first) unless `child` already shows."""
        if not self.js(f"document.body.innerText.includes({json.dumps(child)})"):
            found = self.js(
                "(() => { const b = document.querySelectorAll("
                "'button[data-component-id*=\"runnamecellrenderer\"]')"
                f"[{index}]; if (!b) return false; b.click(); return true; }})()"
            )
            if not found:
                raise SystemExit(
                    f"mlflow_ui_screenshots: no expander for parent run {index} in the runs table"
                )
        self.wait_text(child, 30, "the expanded parent run")

    def type_into(self, selector: str, text: str, where: str) -> None:
        """Type `text` into the input matching `selector`, as a user would."""
        if not self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                       " if (!e) return false; e.focus(); return true; })()"):  # fmt: skip
            raise SystemExit(f"mlflow_ui_screenshots: {where}: nothing matches {selector!r}")
        self.call("Input.insertText", text=text)
        time.sleep(3)

    def click_button(self, text: str, where: str) -> None:
        """Click the button whose text is `text`."""
        found = self.js(
            "(() => { const b = Array.from(document.querySelectorAll('button'))"
            f".find(e => e.innerText.trim() === {json.dumps(text)});"
            " if (!b) return false; b.click(); return true; })()"
        )
        if not found:
            raise SystemExit(f"mlflow_ui_screenshots: {where}: no button {text!r}")

    def click_row_checkbox(self, run_name: str, where: str) -> None:
        """Tick the selection box of the table row that shows `run_name`."""
        found = self.js(
            "(() => { const rows = Array.from(document.querySelectorAll('[role=row]'))"
            f".filter(r => r.innerText.includes({json.dumps(run_name)}));"
            " const boxes = rows.map(r => r.querySelector('input[type=checkbox]')).filter(Boolean);"
            " if (!boxes.length) return false; boxes[0].click(); return true; })()"
        )
        if not found:
            raise SystemExit(f"mlflow_ui_screenshots: {where}: no row with a checkbox shows {run_name!r}")
        time.sleep(1)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path}")

    def close(self) -> None:
        self.ws.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", type=Path, help="the pipeline's tracking.store (holds mlflow.db)")
    parser.add_argument("out", type=Path, help="folder for the PNGs")
    parser.add_argument("--experiment", default="sea")
    parser.add_argument("--size", default="1600x1000", help="window WIDTHxHEIGHT")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    db = args.store.resolve() / "mlflow.db"
    if not db.is_file():
        print(f"mlflow_ui_screenshots: no MLflow store at {db}", file=sys.stderr)
        return 1
    from mlflow import MlflowClient

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        print(f"mlflow_ui_screenshots: no experiment {args.experiment!r} in {db}", file=sys.stderr)
        return 1
    eid = experiment.experiment_id
    runs = client.search_runs([eid], order_by=["attributes.start_time DESC"])

    def stage_runs(parent: object, stage: str) -> list:
        return [
            r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
            and r.data.tags.get("sea.stage") == stage
        ]

    # the newest pipeline run that trained (a rerun that skipped every stage logged no models)
    trained = [
        r
        for r in runs
        if r.data.tags.get("sea.kind") == "pipeline"
        and [c for c in stage_runs(r, "instruct") if c.data.tags.get("sea.skipped") == "false"]
    ]
    if not trained:
        print(f"mlflow_ui_screenshots: no pipeline run in {db} trained a model", file=sys.stderr)
        return 1
    parent = trained[0]
    pipelines = [r for r in runs if r.data.tags.get("sea.kind") == "pipeline"]  # the table's order
    aligns, instruct = stage_runs(parent, "align"), stage_runs(parent, "instruct")[0]
    versions = client.search_model_versions(f"run_id='{instruct.info.run_id}'")
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))

    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port"]
        + [str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", 180)
        browser = Browser(args.chromium, width, height)
        ml = "workflowType=machine_learning"  # the "Model training" switch at the top of the side bar
        browser.open(f"{base}/#/experiments/{eid}?{ml}", parent.info.run_name)
        browser.click('button[aria-label="Close"]', "the assistant panel", required=False)  # more room
        browser.expand(pipelines.index(parent), aligns[0].info.run_name)
        browser.screenshot(args.out / "1_experiment_runs.png")

        # README's comparison: filter the align runs, expand their parent, tick them, press Compare
        search = urllib.parse.urlencode({"searchFilter": "tags.sea.stage = 'align'"})
        browser.open(f"{base}/#/experiments/{eid}/runs?{ml}&{search}", parent.info.run_name)
        browser.expand(pipelines.index(parent), aligns[0].info.run_name)  # the UI may keep it open
        for name in sorted(r.info.run_name for r in aligns):
            browser.click_row_checkbox(name, "the filtered runs")
        browser.screenshot(args.out / "2_align_runs_selected.png")
        browser.click_button("Compare", "the runs table with two runs ticked")
        browser.wait_text("lambda", 60, "the compare page")
        browser.screenshot(args.out / "3_compare_align_runs.png")

        charts = {"searchFilter": "tags.sea.stage = 'align'", "compareRunsMode": "CHART"}  # the chart view
        browser.open(f"{base}/#/experiments/{eid}/runs?{ml}&{urllib.parse.urlencode(charts)}", "Add chart")
        browser.expand(pipelines.index(parent), aligns[0].info.run_name)
        browser.type_into('input[placeholder="Search metric charts"]', "train/", "the chart view")
        browser.wait_text("train/loss_sea", 30, "the chart view's train/ charts")
        browser.screenshot(args.out / "4_align_runs_charts.png")

        browser.open(f"{base}/#/experiments/{eid}/runs/{instruct.info.run_id}?{ml}", "Logged models")
        browser.screenshot(args.out / "5_stage_run.png")

        browser.open(f"{base}/#/experiments/{eid}/models?{ml}", aligns[0].info.run_name)
        browser.screenshot(args.out / "6_models_tab.png")

        for version in versions[:1]:
            model_id = version.source.removeprefix("models:/")  # a SQL registry keeps no model_id
            uri = f"{base}/#/experiments/{eid}/models/{model_id}?{ml}"
            browser.open(uri, "pope/f1")  # the evaluate run's scores, logged against the model
            browser.screenshot(args.out / "7_logged_model.png")
            browser.open(f"{base}/#/models", version.name)
            browser.screenshot(args.out / "8_registry.png")
            browser.open(f"{base}/#/models/{version.name}/versions/{version.version}", "Source")
            browser.screenshot(args.out / "9_registry_version.png")
    finally:
        if browser is not None:
            browser.close()
        ui.terminate()
        ui.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
