"""`dvc plots show` writes a page that renders offline: vega, vega-lite and vega-embed come inline from
the committed template (.dvc/plots/offline.html), no script is loaded from the network, and every plot
of dvc.yaml gets a div that vega-embed can find."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_dvc import dvc_env

REPO = Path(__file__).resolve().parent.parent
PLOTS = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]


def curves_csv(path: Path) -> None:
    """A small align_curves.csv with every column dvc.yaml plots."""
    columns = sorted(
        {c for plot in PLOTS for spec in plot.values() for cols in spec["y"].values() for c in cols}
    )
    rows = [",".join(["step", *columns])]
    rows += [
        ",".join([str(step), *(f"{1.0 / step + i * 0.1:.4f}" for i in range(len(columns)))])
        for step in range(1, 11)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dvc plots show` in a repo with this repo's dvc.yaml, params.yaml and .dvc/config."""
    repo = tmp_path_factory.mktemp("plots") / "repo"
    repo.mkdir()
    for rel in ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots"):
        src, dst = REPO / rel, repo / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    report = yaml.safe_load((REPO / "params.yaml").read_text())["paths"]["report"]
    curves_csv(repo / report / "align_curves.csv")
    done = subprocess.run(
        ["dvc", "plots", "show", "-o", "html"], cwd=repo, capture_output=True, text=True, env=dvc_env()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return repo / "html" / "index.html"


def test_plots_page_loads_nothing_from_the_network(plots_page: Path):
    page = plots_page.read_text(encoding="utf-8")
    assert not re.findall(r"<script[^>]*\bsrc=", page), "every script is inline"
    assert not re.findall(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page), "no remote resource"
    for lib in ("vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"):
        assert f"/* {lib} (BSD-3-Clause)" in page, lib


def test_every_plot_gets_a_div_vega_embed_can_find(plots_page: Path):
    page = plots_page.read_text(encoding="utf-8")
    targets = re.findall(r"vegaEmbed\('#([^']*)', spec\)", page)
    assert len(targets) == len(PLOTS), targets
    # DVC makes the div id from the plot's title; a quote or a colon in a title breaks the page.
    bad = [t for t in targets if not re.fullmatch(r"[A-Za-z0-9_-]+", t)]
    assert not bad, f"plot titles that give ids vega-embed cannot select: {bad}"
    for target in targets:
        assert f'<div id = "{target}">' in page


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_plots_page_draws_every_plot_in_chromium_offline(plots_page: Path):
    """Headless Chromium with name resolution off draws one chart per plot."""
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000",
            "--dump-dom",
            plots_page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    charts = re.findall(r'<(?:canvas|svg)[^>]*class="marks"', done.stdout)
    assert len(charts) == len(PLOTS), f"{len(charts)} charts drawn for {len(PLOTS)} plots"
