"""Atomic file and directory writes, JSON helpers and content hashing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sea.errors import SeaError


def _json_dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(path: Path) -> None:
    """The mode a plain `open`/`mkdir` would give (umask applied), instead of `tempfile`'s private 0600 /
    0700: outputs stay readable by the group on a shared machine or DVC remote."""
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        default_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, _json_dumps(obj))


def write_json(path: str | Path, obj: Any) -> Path:
    """Deterministic JSON (sorted keys, UTF-8), for files inside a folder written atomically as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_json_dumps(obj), encoding="utf-8")
    return path


def write_jsonl(path: str | Path, rows: Iterable[dict], ensure_ascii: bool = False) -> Path:
    """JSON lines, one row per line (UTF-8; `ensure_ascii` escapes non-ASCII as `json.dumps` does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=ensure_ascii) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[Any]:
    """All JSON values of a JSON-lines file (blank lines skipped); SeaError naming a bad line."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"file not found: {path}")
    rows = []
    with path.open("r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise SeaError(f"{path}:{lineno}: invalid JSON ({e.msg})") from e
    return rows


def read_json(path: str | Path) -> Any:
    """A JSON file's value; SeaError naming the file (and line, column) when missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise SeaError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SeaError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a fresh temp folder next to `final`; on success it replaces `final` in one rename.

    On error the temp folder is removed and `final` is left as it was, so a crashed stage never
    leaves a half-written output behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    default_mode(tmp)
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(src: Path, final: Path) -> None:
    """Move folder `src` onto `final`, replacing what was there (the old folder is moved aside first)."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.replace(final, trash / final.name)
        os.replace(src, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, final)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: str | Path) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by its POSIX path relative to `root`."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
