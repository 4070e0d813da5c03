"""Shared by the benchmarks: a fair, cold feature cache, a results table, atomic JSON output."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def cold_cache() -> None:
    """Point the feature cache at an empty folder so timings include the embedding pass."""
    os.environ["HEADSTART_CACHE"] = tempfile.mkdtemp(prefix="headstart-bench-")
    from headstart.train import cache

    cache.clear_memory_cache()


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    print(f"\n{title}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=RESULTS, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
    print(f"\nwrote {path}")
    return path
