"""Each stage's params (its `dvc.yaml` params and config hash) are the config keys its code reads.

The tiny pipeline runs stage by stage with every key lookup on the config recorded (OmegaConf's
`DictConfig._get_node`, which attribute access, `get`, `select` and `to_container` all go through).
A key a stage reads must lie under one of its params, its deps or out, its `runtime` keys or the
sections every stage may read (`RUNTIME_KEYS`); and every param and runtime key must be read."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

from sea.config import compose
from sea.stages import STAGE_NAMES, get_stage
from sea.stages.base import RUNTIME_KEYS, Stage


class Recorder:
    """The dotted keys looked up on any DictConfig while `on`, lists' items as the list's key."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.on = False

    @contextlib.contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
        get_node = DictConfig._get_node
        hash_record = Stage.hash_record

        def recording_get_node(node: DictConfig, key, *args, **kwargs):  # noqa: ANN001 - OmegaConf's
            if self.on:  # off while OmegaConf walks the tree for the full key
                self.on = False
                try:
                    self.keys.add(re.sub(r"\[.*", "", node._get_full_key(key)))
                finally:
                    self.on = True
            return get_node(node, key, *args, **kwargs)

        def unrecorded_hash_record(stage: Stage, *args, **kwargs):  # reads every param by design
            was, self.on = self.on, False
            try:
                return hash_record(stage, *args, **kwargs)
            finally:
                self.on = was

        monkeypatch.setattr(DictConfig, "_get_node", recording_get_node)
        monkeypatch.setattr(Stage, "hash_record", unrecorded_hash_record)
        yield self

    def run(self, stage: Stage, cfg: DictConfig) -> set[str]:
        self.keys, self.on = set(), True
        try:
            for arm in [str(a) for a in cfg.arms] if stage.per_arm else [None]:
                stage.run(cfg, arm)
        finally:
            self.on = False
        return self.keys


def under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def allowed_keys(stage: Stage) -> tuple[str, ...]:
    instance = ("seed", "arms") if stage.per_arm else ()
    return (*stage.params, *stage.runtime, *stage.deps, stage.out, *RUNTIME_KEYS, *instance)


def uncovered(stage: Stage, read: set[str]) -> list[str]:
    """Keys read that no allowed key covers; a lookup of a section on the way to an allowed key
    (`align` for `align.train`) is not a read of the section's other keys."""
    allowed = allowed_keys(stage)
    return sorted(
        key
        for key in read
        if not any(under(key, a) for a in allowed) and not any(a.startswith(key + ".") for a in allowed)
    )


@pytest.mark.slow
@pytest.mark.long
def test_each_stage_reads_exactly_its_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The optional readers on: align's training probe (eval.diagnostics) and evaluate's stage-1 probe.
    cfg = compose(
        [
            "experiment=tiny",
            f"paths.root={tmp_path / 'out'}",
            "tracking=none",
            "align.diagnostics.every=2",
            "eval.probe.enabled=true",
        ]
    )
    problems = []
    with Recorder().installed(monkeypatch) as recorder:
        for name in STAGE_NAMES:
            stage = get_stage(name)
            read = recorder.run(stage, cfg)
            if missing := uncovered(stage, read):
                problems.append(f"{name} reads {missing}, which are not among its params")
            unread = [k for k in (*stage.params, *stage.runtime) if not any(under(r, k) for r in read)]
            if unread:
                problems.append(f"{name} lists {unread}, which it does not read")
    assert not problems, "\n".join(problems)


def test_recorder_sees_attribute_select_and_whole_section_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The recorder itself, on a demo stage: what each way of reading the config records."""
    from omegaconf import OmegaConf

    from sea.config import select, select_or

    cfg = OmegaConf.create(
        {"a": {"b": 1, "c": {"d": [1, 2], "e": 3}}, "f": 4, "paths": {"out": str(tmp_path)}}
    )

    def build(cfg: DictConfig, out: Path) -> dict:
        return {"x": cfg.f + select(cfg, "a.b") + len(select(cfg, "a.c")["d"]) + select_or(cfg, "g", 0)}

    stage = Stage(name="demo", help="", params=("f", "a.b"), out="paths.out", build=build)
    with Recorder().installed(monkeypatch) as recorder:
        read = recorder.run(stage, cfg)
    assert {"f", "a.b", "a.c.d", "a.c.e", "g"} <= read
    assert uncovered(stage, read) == ["a.c", "a.c.d", "a.c.e", "g"]
