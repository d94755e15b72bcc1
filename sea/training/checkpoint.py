"""Training checkpoints: accelerate's `save_state` every N steps into `<dir>/step_XXXXXXXX/`, the last K
kept, resumed automatically, refused when the config changed.

The folder lives outside the stage's temp output folder (and outside DVC's `outs`, which DVC deletes
before re-running a stage), so it survives a crash; the stage removes it after success.

- `checkpoint.json` at the folder's root records the fingerprint of the config that made the
  checkpoints (everything that changes the training trajectory). A different fingerprint raises a
  `SeaError` naming the changed keys, unless `restart` is set, which deletes the checkpoints.
- A checkpoint is written into `.step_XXXXXXXX.tmp` by every process and renamed by the main process
  once complete, so a crash mid-save leaves the previous checkpoint as the latest.
- Each checkpoint records the size and sha256 of its files (`files.json`, written before the rename);
  resuming verifies the latest one and falls back to the previous kept one, with a warning, when it
  is damaged (a truncated or overwritten file).
- Trusted input only: accelerate's `load_state` unpickles the optimizer, scheduler, RNG and training
  states (`torch.load` with pickles). Resume only from checkpoint folders this pipeline wrote; the
  digests catch damage, not tampering.
- Only parameters that require a gradient go into the model file (the frozen vision tower and, in
  stage 1, the frozen LLM are rebuilt from the config), with optimizer, scheduler, RNG states and the
  registered training state (step = data position).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sea.config import config_hash, flatten
from sea.errors import SeaError
from sea.utils.io import atomic_write_json, read_json

log = logging.getLogger(__name__)

META = "checkpoint.json"
FILES = "files.json"
STEP_RE = re.compile(r"^step_(\d{8})$")


@dataclass
class TrainState:
    """What the loop needs besides model and optimizer to resume: the optimizer step (the data position:
    the sampler is a function of it) and the tokens seen. Registered with accelerate for checkpointing."""

    step: int = 0
    tokens: int = 0
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "tokens": self.tokens, "samples": self.samples, "extra": dict(self.extra)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.tokens = int(state.get("tokens", 0))
        self.samples = int(state.get("samples", 0))
        self.extra = dict(state.get("extra", {}))


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))


class CheckpointManager:
    """Checkpoints of one training run (one stage arm) under `directory`."""

    def __init__(
        self,
        directory: str | Path,
        fingerprint: dict[str, Any],
        every: int,
        keep: int = 2,
        restart: bool = False,
        restart_key: str = "checkpoint.restart",
    ) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        self.hash = config_hash(self.fingerprint)
        self.every = int(every)
        self.keep = max(1, int(keep))
        self.restart = bool(restart)
        self.restart_key = restart_key

    # ---- discovery ----------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """Complete checkpoints, ascending."""
        if not self.directory.is_dir():
            return []
        found = [
            int(m.group(1)) for p in self.directory.iterdir() if (m := STEP_RE.match(p.name)) and p.is_dir()
        ]
        return sorted(found)

    def path(self, step: int) -> Path:
        return self.directory / f"step_{step:08d}"

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def check(self, is_main: bool = True) -> Path | None:
        """The checkpoint to resume from (None: start fresh). Raises SeaError when the checkpoints were made
        with another config and `restart` is off; with `restart` the main process deletes them."""
        meta_path = self.directory / META
        if self.restart:
            if is_main and self.directory.exists():
                log.warning("checkpoints in %s discarded (%s=true)", self.directory, self.restart_key)
                shutil.rmtree(self.directory)
            return None
        if not meta_path.is_file():
            return None
        meta = read_json(meta_path)
        if meta.get("config_hash") != self.hash:
            changed = _changed_keys(meta.get("fingerprint", {}), self.fingerprint)
            raise SeaError(
                f"the checkpoints in {self.directory} were made with a different config (changed: "
                f"{', '.join(changed[:12]) or 'unknown'}{' ...' if len(changed) > 12 else ''}); resuming "
                f"would mix two runs. Restore the config to resume, or set {self.restart_key}=true to "
                "discard them and start over"
            )
        if is_main:
            for stale in self.directory.glob(".step_*.tmp"):
                log.warning("removing %s, left by a crashed save", stale)
                shutil.rmtree(stale, ignore_errors=True)
        return self.intact_latest()

    def intact_latest(self) -> Path | None:
        """The newest checkpoint whose files match their recorded sizes and hashes; a damaged one is
        skipped with a warning. None when there is none; an error when every one is damaged."""
        from sea.integrity import find_damage

        steps = self.steps()
        for step in reversed(steps):
            path = self.path(step)
            files = path / FILES
            problem = find_damage(path, read_json(files), True) if files.is_file() else None
            if problem is None:
                return path
            log.warning("checkpoint %s is damaged (%s): trying the previous one", path, problem)
        if steps:
            raise SeaError(
                f"every checkpoint in {self.directory} is damaged; set {self.restart_key}=true to start over"
            )
        return None

    # ---- writing ------------------------------------------------------------------------------
    def due(self, step: int, total_steps: int) -> bool:
        """A checkpoint after this optimizer step? (never after the last: the stage saves its outputs)."""
        return self.every > 0 and step % self.every == 0 and step < total_steps

    def save(self, accelerator: Any, step: int) -> Path:
        """`accelerator.save_state` on every process, then the main process renames and prunes."""
        tmp = self.directory / f".step_{step:08d}.tmp"
        final = self.path(step)
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            atomic_write_json(
                self.directory / META, {"config_hash": self.hash, "fingerprint": self.fingerprint}
            )
        accelerator.wait_for_everyone()
        kwargs = {}
        if (
            getattr(accelerator, "distributed_type", None) is not None
            and accelerator.distributed_type.name == "DEEPSPEED"
        ):
            kwargs["exclude_frozen_parameters"] = True
        accelerator.save_state(str(tmp), **kwargs)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            from sea.integrity import file_digests

            atomic_write_json(tmp / FILES, file_digests(tmp))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in self.steps()[: -self.keep]:
                shutil.rmtree(self.path(old), ignore_errors=True)
            log.info("checkpoint: step %d -> %s", step, final)
        accelerator.wait_for_everyone()
        return final

    def clear(self, is_main: bool = True) -> None:
        """Remove every checkpoint (after the run's outputs are safe)."""
        if is_main:
            shutil.rmtree(self.directory, ignore_errors=True)


def trainable_state_filter(model: Any) -> Any:
    """A `register_save_state_pre_hook` hook: keep only parameters that require a gradient (and the
    buffers of modules that have one) in the model state accelerate writes."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}

    def hook(models: list[Any], weights: list[dict[str, Any]], output_dir: str) -> None:
        for i, state in enumerate(weights):
            weights[i] = {k: v for k, v in state.items() if k in names}

    return hook


def trainable_state_check(model: Any) -> Any:
    """A `register_load_state_pre_hook` hook: the checkpoint's model file must hold exactly the trainable
    parameters (accelerate loads it with strict=False, since frozen weights are not in it)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}

    def hook(models: list[Any], input_dir: str) -> None:
        path = Path(input_dir) / "model.safetensors"
        if not path.is_file():  # DeepSpeed / FSDP write their own layouts
            return
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            saved = set(f.keys())
        if saved != names:
            missing, extra = sorted(names - saved)[:5], sorted(saved - names)[:5]
            raise SeaError(
                f"checkpoint {input_dir} does not fit the model (missing {missing}, unexpected {extra}); "
                "set the stage's checkpoint.restart=true to start over"
            )

    return hook
