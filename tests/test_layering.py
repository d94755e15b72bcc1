"""The package's layering, read from its import graph: components never import the pipeline layer."""

from __future__ import annotations

from import_graph import modules, sea_imports

# The pipeline layer: the stages, and what runs them (CLI, runner, launcher).
PIPELINE = ("sea.stages", "sea.runner", "sea.launch", "sea.__main__")


def in_pipeline(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PIPELINE)


def test_nothing_below_the_stage_layer_imports_sea_stages():
    offenders = {
        module: sorted(m for m in sea_imports(module) if in_pipeline(m))
        for module in modules()
        if not in_pipeline(module)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_graph_sees_function_level_and_relative_imports():
    assert "sea.tracking" in sea_imports("sea.training.loop")  # imported inside `_log_step`
    assert "sea.stages.base" in sea_imports("sea.stages")  # the registry's `from sea.stages.base import`
    assert in_pipeline("sea.stages.align") and not in_pipeline("sea.stagesx")
