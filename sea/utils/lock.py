"""One writer per output: a lock file holding the owner's pid and host, created atomically (O_EXCL).

A lock whose owner is a dead process on this host is stale: it is taken over with a warning. A live
owner, or one on another host (its pid cannot be checked from here), makes the second run fail with a
one-line `SeaError` naming the owner and the lock file.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sea.errors import SeaError

log = logging.getLogger(__name__)


class LockedError(SeaError):
    """Another live run holds the lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stale(owner: dict[str, Any] | None, path: Path) -> bool:
    if owner is None:  # unreadable: a writer that died between create and write, unless it is brand new
        try:
            return time.time() - path.stat().st_mtime > 10
        except FileNotFoundError:
            return True
    return owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", -1)))


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock file `path` for writing `what` (e.g. `align[sea, seed 0] outputs in /x`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = _owner(path)
            if _stale(owner, path):
                log.warning("removing the stale lock %s (its owner %s is gone)", path, owner)
                path.unlink(missing_ok=True)
                continue
            who = f"pid {owner['pid']} on {owner['host']} since {owner.get('since')}" if owner else "a run"
            raise LockedError(
                f"{what} is being written by another run ({who}); wait for it to finish, or delete "
                f"{path} if that run is gone"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    else:
        raise LockedError(f"cannot take the lock {path} for {what}")
    try:
        yield
    finally:
        if (_owner(path) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
