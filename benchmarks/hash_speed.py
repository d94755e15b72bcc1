"""How fast `_SUCCESS.json`'s digests are: sha256 of one large file (what `file_digests` and the full
skip check do per output file), against the cheap size check.

    python benchmarks/hash_speed.py [MiB] [--dir DIR]

Writes a temp file of MiB mebibytes (default 1024) of random bytes in DIR (default: the temp folder),
hashes it twice (the second read comes from the page cache; the first is closer to a cold multi-GB
shard) and prints MB/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sea.utils.io import sha256_file


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mib", nargs="?", type=int, default=1024)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "shard.bin"
        block = os.urandom(1 << 20)
        with path.open("wb") as f:
            for _ in range(args.mib):
                f.write(block)
        size = path.stat().st_size
        start = time.perf_counter()
        _ = path.stat().st_size
        print(f"size check: {(time.perf_counter() - start) * 1e6:.1f} us")
        for attempt in ("first", "second"):
            start = time.perf_counter()
            sha256_file(path)
            seconds = time.perf_counter() - start
            rate = size / 1e6 / seconds
            print(f"sha256 ({attempt} read): {size / 1e6:.0f} MB in {seconds:.2f} s = {rate:.0f} MB/s")


if __name__ == "__main__":
    main()
