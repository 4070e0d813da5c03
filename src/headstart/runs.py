"""Run directories: everything is written to a staging folder and moved into place at the end,
so a failed or interrupted run never leaves a half-written directory or damages an old one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from .errors import HeadstartError

__all__ = ["atomic_path", "atomic_write_text", "write_json", "write_yaml", "check_out", "staged_run_dir",
           "default_run_dir", "require_run", "CONFIG_FILE", "METRICS_FILE", "HISTORY_FILE", "MODEL_DIR"]

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.jsonl"
MODEL_DIR = "model"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_yaml(path: Path, data) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def default_run_dir(backbone: str, strategy: str) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-." else "-" for c in Path(s).name or s)
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe(backbone)}-{safe(strategy)}"


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty output folder unless overwrite: checked before any work starts."""
    if out.exists() and not out.is_dir():
        raise HeadstartError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise HeadstartError(f"--out {out} exists and is not empty; choose another folder or pass --overwrite")


@contextmanager
def staged_run_dir(out: Path, overwrite: bool) -> Iterator[Path]:
    """A staging folder that becomes `out` when the block succeeds, and vanishes when it fails."""
    out = Path(out)
    check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield stage
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.replace(out, old)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def require_run(run_dir: Path) -> Path:
    """The run's model folder, or a clear error when run_dir is not a headstart run."""
    run_dir = Path(run_dir)
    from .backbones import RUN_MARKER

    if not (run_dir / MODEL_DIR / RUN_MARKER).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise HeadstartError(f"{run_dir} is not a headstart run directory (no {CONFIG_FILE} and "
                             f"{MODEL_DIR}/{RUN_MARKER}); give the --out folder of a 'headstart fit'")
    return run_dir / MODEL_DIR
