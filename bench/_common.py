"""Shared by the benchmarks: a fair, cold feature cache, the machine's state, a results table, atomic JSON."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RESULTS = Path(__file__).parent / "results"


@contextmanager
def cold_cache() -> Iterator[Path]:
    """An empty feature cache on disk and in memory, so timings include the embedding pass; removed after."""
    from headstart.train import cache

    folder, before = Path(tempfile.mkdtemp(prefix="headstart-bench-cache-")), os.environ.get("HEADSTART_CACHE")
    os.environ["HEADSTART_CACHE"] = str(folder)
    cache.clear_memory_cache()
    try:
        yield folder
    finally:
        cache.clear_memory_cache()
        if before is None:
            os.environ.pop("HEADSTART_CACHE", None)
        else:
            os.environ["HEADSTART_CACHE"] = before
        shutil.rmtree(folder, ignore_errors=True)


def machine() -> dict:
    """What the figures depend on."""
    import torch

    from headstart.precision import cpu_has_native_bf16

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "native_bf16": cpu_has_native_bf16()}


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


class Stopwatch:
    """Wall seconds of a block, and the share of the machine's CPU that *other* processes used meanwhile.

    On a shared machine that share is the honesty check: with other processes busy, PyTorch's threads
    are oversubscribed and a timing can come out several times too slow.
    """

    def __enter__(self) -> "Stopwatch":
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        others = (_busy_seconds() - self._busy0) - (_own_seconds() - self._own0)
        self.others = max(0.0, others) / (self.seconds * (os.cpu_count() or 1))


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def check_quiet(shares: list[float], limit: float = 0.1) -> None:
    """Say so when other processes took more than `limit` of the CPU during any timed block."""
    worst = max(shares, default=0.0)
    if worst > limit:
        print(f"\nwarning: other processes used up to {worst:.0%} of the CPU during the timings; "
              "the figures are unreliable, rerun on a quiet machine")


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    print(f"\n{title}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def write_results(name: str, data: dict) -> Path:
    """bench/results/NAME.json, written to a temporary file first and moved into place."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"\nwrote {path}")
    return path


def write_csv(path: Path, examples) -> Path:
    """Labelled texts as the text,label CSV a user would hand to headstart."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(examples.inputs, examples.labels))
    return path


def write_image_folder(root: Path, examples) -> str:
    """Labelled images as a folder with one subfolder per class, the form a user has."""
    from PIL import Image
    import numpy as np

    for i, (image, label) in enumerate(zip(examples.inputs, examples.labels)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image)).save(root / label / f"{i}.png")
    return str(root)


def write_labelled(folder: Path, name: str, examples) -> str:
    """Labelled examples as a user has them: folder/NAME.csv for texts, folder/NAME/CLASS/*.png for images."""
    if examples.modality == "text":
        return str(write_csv(folder / f"{name}.csv", examples))
    return write_image_folder(folder / name, examples)
