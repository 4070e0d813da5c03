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
from typing import Iterable, Iterator

import yaml

from .errors import HeadstartError

__all__ = ["atomic_path", "atomic_write_text", "write_json", "write_yaml", "check_out", "check_output_file",
           "staged_run_dir", "default_run_dir", "require_run", "CONFIG_FILE", "METRICS_FILE", "HISTORY_FILE",
           "MODEL_DIR"]

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


def check_out(out: Path, overwrite: bool, keep: Iterable[str | Path] = ()) -> None:
    """Refuse an existing non-empty output folder unless overwrite: checked before any work starts.
    A folder holding the current directory or a path in `keep` (the run's data) is never replaced."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HeadstartError(f"--out {out} is a file; give a folder")
    target = out.expanduser().resolve()
    for path, what in [(Path.cwd(), "the current folder"), *((Path(p), f"the data {p}") for p in keep)]:
        path = path.expanduser().resolve()
        if path == target or target in path.parents:
            raise HeadstartError(f"--out {out} is or holds {what}, which the run would replace; "
                                 "choose a new folder, e.g. runs/NAME")
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
        try:
            os.replace(stage, out)
        except OSError:
            if old is not None:
                os.replace(old, out)  # put the old run back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def check_output_file(output: Path | None, example: str) -> None:
    """Refuse an --output that is a folder, before any work starts."""
    if output is not None and Path(output).is_dir():
        raise HeadstartError(f"--output {output} is a folder; give a file name, e.g. {Path(output) / example}")


def require_run(run_dir: Path) -> Path:
    """The run's model folder, or a clear error when run_dir is not a headstart run."""
    run_dir = Path(run_dir)
    from .backbones import RUN_MARKER

    if not (run_dir / MODEL_DIR / RUN_MARKER).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise HeadstartError(f"{run_dir} is not a headstart run directory (no {CONFIG_FILE} and "
                             f"{MODEL_DIR}/{RUN_MARKER}); give the --out folder of a 'headstart fit'")
    marker = run_dir / MODEL_DIR / RUN_MARKER
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        facts = None
    if not isinstance(facts, dict) or not {"classes", "backbone"} <= facts.keys():
        raise HeadstartError(f"{marker} is damaged (not the JSON 'headstart fit' writes); rerun the fit")
    return run_dir / MODEL_DIR
