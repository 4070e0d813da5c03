"""Run directories: everything is written to a staging folder and moved into place at the end,
so a failed or interrupted run never leaves a half-written directory or damages an old one."""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from .errors import HeadstartError

__all__ = ["atomic_path", "atomic_write_text", "write_json", "write_jsonl", "json_text", "write_yaml", "check_out",
           "claim_out", "claim_output", "local_paths", "staged_run_dir", "default_run_dir", "require_run", "CONFIG_FILE",
           "METRICS_FILE", "HISTORY_FILE", "MODEL_DIR", "RUN_MARKER"]

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.jsonl"
MODEL_DIR = "model"
RUN_MARKER = "headstart-model.json"  # in MODEL_DIR: what makes a folder a run (classes, backbone, checksums)


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


def _finite(data):
    """data with every NaN or infinity replaced by None, so that what headstart writes is strict JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def json_text(data, indent: int | None = None) -> str:
    """Strict JSON (no NaN or Infinity tokens, which most JSON readers refuse): undefined numbers become null."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json_text(data, indent=2) + "\n")


def write_jsonl(path: Path, rows) -> None:
    """One strict JSON object per line (history.jsonl)."""
    atomic_write_text(path, "".join(json_text(row) + "\n" for row in rows))


def write_yaml(path: Path, data) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def default_run_dir(backbone: str, strategy: str) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-." else "-" for c in Path(s).name or s)
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe(backbone)}-{safe(strategy)}"


def local_paths(*sources) -> list[Path]:
    """The sources that are paths on this disk (data, --test, --unlabeled, a backbone folder, a weights file);
    builtin:NAME, registry names and None are not. A name ending in ':random' names the folder before it."""
    paths = []
    for source in sources:
        if source is None or str(source).startswith("builtin:"):
            continue
        text = str(source)
        text = text[: -len(":random")] if text.endswith(":random") else text
        if Path(text).expanduser().exists():
            paths.append(Path(text).expanduser())
    return paths


def _overlap(target: Path, inputs: Iterable[Path]) -> tuple[Path, str] | None:
    """(input, how) when target is an input, holds one, or lies inside an input folder; else None."""
    target = target.expanduser().resolve()
    for path in inputs:
        resolved = Path(path).expanduser().resolve()
        if resolved == target or target in resolved.parents:
            return Path(path), "is or holds"
        if resolved in target.parents and resolved.is_dir():
            return Path(path), "lies inside"
    return None


def check_out(out: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse an --out that is a file, that is, holds or lies inside an input (or is or holds the current
    folder), or that exists and is not empty without overwrite: checked before any work starts."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HeadstartError(f"--out {out} is a file; give a folder")
    here = _overlap(out, [Path.cwd()])
    if here is not None and here[1] == "is or holds":
        raise HeadstartError(f"--out {out} is or holds the current folder, which the run would replace; "
                             "choose a new folder, e.g. runs/NAME")
    clash = _overlap(out, local_paths(*inputs))
    if clash is not None:
        path, how = clash
        why = "which the run would replace" if how == "is or holds" else \
            "where the run would mix with the data (and --overwrite would delete what is there)"
        raise HeadstartError(f"--out {out} {how} the input {path}, {why}; choose a folder outside the inputs, "
                             "e.g. runs/NAME")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise HeadstartError(f"--out {out} exists and is not empty; choose another folder or pass --overwrite")


@contextmanager
def claim_out(out: str | Path | None, overwrite: bool, inputs: Iterable[str | Path] = ()) -> Iterator[Path | None]:
    """Hold --out for one run from its start to its end: the checks of check_out, one writer at a time (a lock
    beside it), and what an interrupted run left there cleaned up or restored, with a warning. None: no --out."""
    if out is None:
        yield None
        return
    out = Path(out)
    inputs = list(inputs)
    check_out(out, True, inputs)  # the path itself first: a file, or an input, is refused before the lock
    with _locked(out, "--out"):
        _recover(out)
        check_out(out, overwrite, inputs)
        yield out


@contextmanager
def claim_output(output: Path | None, example: str, inputs: Iterable[str | Path] = (),
                 suffixes: tuple[str, ...] = ()) -> Iterator[Path | None]:
    """Hold an --output file for one command: not a folder, not an input nor inside one (the run read
    included), named for a format the command writes (`suffixes`), one writer at a time; a temporary file an
    interrupted write left beside it is removed."""
    if output is None:
        yield None
        return
    output = Path(output)
    if output.is_dir():
        raise HeadstartError(f"--output {output} is a folder; give a file name, e.g. {output / example}")
    clash = _overlap(output, local_paths(*inputs))
    if clash is not None:
        raise HeadstartError(f"--output {output} {clash[1]} the input {clash[0]}, which writing it would damage; "
                             f"write it elsewhere, e.g. {example}")
    if suffixes and output.suffix.lower() not in suffixes:  # a .json or .xlsx name would hold another format
        raise HeadstartError(f"--output {output}: this command writes {' or '.join(suffixes)}; name the file so, "
                             f"e.g. {example}")
    with _locked(output, "--output"):
        for leftover in _leftovers(output, r"[a-z0-9_]{8}\.tmp"):
            leftover.unlink()
            warnings.warn(f"removed {leftover}, a temporary file an interrupted write of {output} left behind",
                          stacklevel=3)
        yield output


def _leftovers(path: Path, pattern: str) -> list[Path]:
    """Hidden files beside path that headstart named after it: '.NAME.' + pattern (see atomic_path, staged_run_dir)."""
    match = re.compile(re.escape(f".{path.name}.") + pattern + "$").match
    return sorted(p for p in path.parent.iterdir() if match(p.name)) if path.parent.is_dir() else []


def _recover(out: Path) -> None:
    """A kill during staged_run_dir's last steps leaves a staging folder, or the old run moved aside: the next
    run into the same --out removes the first and puts the second back (when --out is missing)."""
    for stage in _leftovers(out, r"[a-z0-9_]{8}\.partial"):
        shutil.rmtree(stage, ignore_errors=True)
        warnings.warn(f"removed {stage}, the staging folder of an interrupted run into {out}", stacklevel=4)
    for old in _leftovers(out, r"\d+\.old"):
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            warnings.warn(f"removed {old}, the previous run an interrupted run into {out} had already replaced",
                          stacklevel=4)
        else:
            os.replace(old, out)
            warnings.warn(f"restored {out} from {old}, where an interrupted run had moved it aside", stacklevel=4)


@contextmanager
def _locked(path: Path, flag: str) -> Iterator[None]:
    """An exclusive lock on '.NAME.lock' beside path, for as long as the block runs; refused at once if another
    process holds it. The kernel drops the lock when its holder dies, so a killed run never blocks the next."""
    folder = path.parent
    lock = folder / f".{path.name}.lock"
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise HeadstartError(f"cannot write in {folder} ({err.strerror}); choose a folder you can write to "
                                 f"for {flag} {path}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HeadstartError(f"{flag} {path} is being written by another headstart process (pid {holder}); "
                                 "wait for it to finish or choose another path") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        try:
            os.unlink(lock)  # while still held, so that no one else locks a file about to vanish
        except OSError:
            pass
        os.close(fd)


@contextmanager
def staged_run_dir(out: Path, overwrite: bool) -> Iterator[Path]:
    """A staging folder that becomes `out` when the block succeeds, and vanishes when it fails.
    A disk that fills up or turns read-only on the way is one clear error; the old run is left as it was."""
    out = Path(out)
    check_out(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as err:
        raise HeadstartError(f"cannot write {out} ({err.strerror}); choose a folder you can write to") from None
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
    except OSError as err:
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise HeadstartError(f"cannot write {out}: {err.strerror or err}{where}; nothing was replaced. "
                             "Free some space or choose another folder") from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def require_run(run_dir: Path) -> Path:
    """The run's model folder, or a clear error when run_dir is not a headstart run."""
    run_dir = Path(run_dir)
    if not (run_dir / MODEL_DIR / RUN_MARKER).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise HeadstartError(f"{run_dir} is not a headstart run directory (no {CONFIG_FILE} and "
                             f"{MODEL_DIR}/{RUN_MARKER}); give the --out folder of a 'headstart fit'")
    marker = run_dir / MODEL_DIR / RUN_MARKER
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        facts = None
    if not isinstance(facts, dict) or "backbone" not in facts or not ({"task", "classes"} & facts.keys()):
        raise HeadstartError(f"{marker} is damaged (not the JSON 'headstart fit' writes); rerun the fit")
    return run_dir / MODEL_DIR
