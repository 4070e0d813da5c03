"""Checkpoints: what a long command has done so far, kept beside its --out so that a kill costs little work.

    with resumable(out, "fit", spec.to_dict(), resume, overwrite) as checkpoints:   # .OUT.resume/ beside --out
        ...engine.run(..., checkpoints=checkpoints.child("train"))       # one file per epoch, the last two kept
    # the block succeeded: the run is in place, the checkpoints are gone

A checkpoint is one safetensors file: every tensor of a nested state (weights, optimiser moments, random
streams) under its path, and the rest as JSON in the file's metadata, so nothing is ever unpickled. Files
are written atomically and numbered; the newest whole one is read back. Finished pieces of work (compare's
folds, self-training's rounds, auto's race) are kept as JSON by `put`. `--resume OUT` reopens the folder,
refuses a changed command or spec (naming the field) and continues; a run started afresh into an --out that
has one is refused unless --overwrite, so a checkpoint is never lost by accident. A run that fails with a
clear error removes its checkpoints (resuming would meet the error again); a kill or Ctrl-C keeps them.

A plan that never trains the backbone checkpoints its head alone (the engine's `_trained_part`). Otherwise an
epoch's checkpoint is written unless writing it would take more than CHECKPOINT_SHARE of the time since the
last one: quick epochs then no longer spend most of a run writing the whole model again, and a kill costs one
epoch, or ten times a checkpoint's write time, at most.
$HEADSTART_CHECKPOINT_INTERVAL (seconds) fixes the least time between two instead; 0 writes every one.

Ctrl-C asks to stop: the command stops at the next checkpoint, once it is written (`request_stop`).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import HeadstartError
from .runs import atomic_path

__all__ = ["Checkpoints", "resumable", "resume_folder", "resume_out", "capture_random", "restore_random", "Interrupted",
           "request_stop", "graceful_interrupts"]

KEEP = 2  # checkpoints kept per folder: the newest, and the one before it in case the newest is damaged
# At most this share of a run's time goes to writing checkpoints (MiniLM's takes ~0.8 s; a linear probe's epoch on
# cached features ~10 ms: it wrote one every epoch, 5 of a 2,000-review probe's 33 s).
CHECKPOINT_SHARE = 0.1
COMMAND_FILE = "command.json"
_FILE = re.compile(r"^(\d{6})\.safetensors$")
_stop_requested = False


class Interrupted(Exception):
    """A stop asked for by Ctrl-C (raised right after a checkpoint is written on the first one); its message says how
    to resume. Not a KeyboardInterrupt, which the command line's framework would swallow into a bare exit code."""


def request_stop(*_) -> None:
    global _stop_requested
    if _stop_requested:  # the second Ctrl-C: stop now, the last checkpoint is kept
        raise KeyboardInterrupt
    _stop_requested = True
    from .train.progress import console  # here: the engine imports this module, train/ would import it back
    console.print("[yellow]stopping[/] at the next checkpoint (the end of this epoch, round or fold); "
                  "press Ctrl-C again to stop now and keep the last one")


@contextmanager
def graceful_interrupts() -> Iterator[None]:
    """Within the block the first Ctrl-C asks for a stop at the next checkpoint, the second stops at once (only
    the main thread can take signals; elsewhere Ctrl-C keeps its usual meaning)."""
    global _stop_requested
    _stop_requested = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _stop_requested = False


def resume_folder(out: Path) -> Path:
    """Where the checkpoints of a run into `out` live: a hidden folder beside it (kept until the run is in place)."""
    out = Path(out)
    return out.parent / f".{out.name}.resume"


def resume_out(out, resume: bool) -> Path | None:
    """--out as a Path (None when not given); resuming needs it: it names the run to continue."""
    if resume and out is None:
        raise HeadstartError("--resume needs the --out folder of the interrupted run, e.g. --resume runs/NAME")
    return None if out is None else Path(out)


def capture_random() -> dict:
    """The global random streams (torch, numpy, Python) as a packable state."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": [version, list(internal), gauss]}


def restore_random(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _pack(value, tensors: dict, path: str):
    """`value` with every tensor moved into `tensors` under its path; tuples become lists."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()  # a copy: tied weights share storage
        return {"__tensor__": path}
    if isinstance(value, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(value)).clone()
        return {"__ndarray__": path}
    if isinstance(value, dict):
        return {"__dict__": [[_pack(k, tensors, f"{path}.k{i}"), _pack(v, tensors, f"{path}.{i}")]
                             for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        return [_pack(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _unpack(value, tensors: dict):
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        return {_unpack(k, tensors): _unpack(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_unpack(v, tensors) for v in value]
    return value


class Checkpoints:
    """One folder of numbered checkpoints (and finished pieces of work), and its sub-folders."""

    def __init__(self, folder: Path, writes: bool = True):
        self.folder, self.writes = Path(folder), writes  # writes=False: read only (data-parallel helpers)
        self._written_at: float | None = None  # when the last checkpoint was written here, and what it took
        self._write_seconds = 0.0

    def child(self, name: str) -> "Checkpoints":
        return Checkpoints(self.folder / re.sub(r"[^A-Za-z0-9_.-]", "-", name), self.writes)

    def save(self, state: dict) -> None:
        """Write `state` as the next checkpoint (atomically) when one is due, drop all but the newest KEEP; stop here
        if asked (a stop is always preceded by its checkpoint)."""
        if not self.writes or not (_stop_requested or self._due()):
            return
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        packed = json.dumps(_pack(state, tensors, "s"))
        numbers = self._numbers()
        path = self.folder / f"{(numbers[-1] + 1 if numbers else 0):06d}.safetensors"
        try:
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata={"state": packed})
        except OSError as err:
            raise HeadstartError(f"cannot write the checkpoint {path} ({err.strerror}); free some space or "
                                 "choose another --out") from None
        for old in numbers[: max(0, len(numbers) + 1 - KEEP)]:
            (self.folder / f"{old:06d}.safetensors").unlink(missing_ok=True)
        self._written_at = time.perf_counter()
        self._write_seconds = self._written_at - started
        if _stop_requested:
            raise Interrupted

    def _due(self) -> bool:
        """Whether enough has happened since the last checkpoint to be worth writing the next (see the module)."""
        if self._written_at is None:
            return True
        fixed = checkpoint_interval()
        wait = fixed if fixed is not None else self._write_seconds / CHECKPOINT_SHARE
        return time.perf_counter() - self._written_at >= wait

    def latest(self) -> dict | None:
        """The newest checkpoint that reads back whole, or None when there is none."""
        for number in reversed(self._numbers()):
            try:
                with safe_open(str(self.folder / f"{number:06d}.safetensors"), "pt") as f:
                    tensors = {key: f.get_tensor(key) for key in f.keys()}
                    packed = json.loads((f.metadata() or {})["state"])
            except Exception:  # a damaged file (safetensors raises several types): the one before it
                continue
            return _unpack(packed, tensors)
        return None

    def put(self, key: str, result) -> None:
        """Keep a finished piece of work (JSON, NaN allowed) under `key`."""
        if not self.writes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(result, default=lambda o: o.tolist()), encoding="utf-8")  # numpy values
        if _stop_requested:
            raise Interrupted

    def get(self, key: str):
        """A finished piece of work kept by `put`, or None."""
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except ValueError:
            return None

    def clear(self) -> None:
        """Forget this folder's checkpoints (a finished piece of work was kept with `put` instead)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for m in map(_FILE.match, os.listdir(self.folder)) if m)


def _first_difference(saved, given, path: str = "") -> str | None:
    if isinstance(saved, dict) and isinstance(given, dict):
        for key in dict.fromkeys([*saved, *given]):
            found = _first_difference(saved.get(key), given.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if saved == given else f"{path} (was {saved!r}, now {given!r})"


def checkpoint_interval() -> float | None:
    """$HEADSTART_CHECKPOINT_INTERVAL in seconds (None: unset, the write time decides), or one clear error."""
    text = os.environ.get("HEADSTART_CHECKPOINT_INTERVAL", "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise HeadstartError(f"HEADSTART_CHECKPOINT_INTERVAL={text!r} is not a number of seconds; give e.g. 60, or 0 "
                             "to write a checkpoint every epoch")
    return seconds


@contextmanager
def resumable(out: Path, command: str, spec: dict, resume: bool, overwrite: bool) -> Iterator[Checkpoints]:
    """The checkpoints of a run into `out` (call it with --out claimed): reopened and checked for --resume, made
    afresh otherwise; removed once the block succeeds or fails with a clear error, kept when it is killed or
    interrupted. An unfinished run's checkpoints are never silently lost."""
    checkpoint_interval()  # a bad setting is refused before any work, not at the second checkpoint
    folder = resume_folder(out)
    saved_file = folder / COMMAND_FILE
    if resume:
        try:
            saved = json.loads(saved_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise HeadstartError(f"--resume {out}: there is no unfinished run to resume there (no readable "
                                 f"{saved_file}); start it with --out {out}") from None
        if saved.get("command") != command:
            raise HeadstartError(f"--resume {out}: the unfinished run there is a '{saved.get('command')}', not a "
                                 f"'{command}'; resume it with 'headstart {saved.get('command')} ... --resume {out}'")
        changed = _first_difference(saved.get("spec"), json.loads(json.dumps(spec)))
        if changed:
            raise HeadstartError(f"--resume {out}: this command's options differ from the unfinished run's in "
                                 f"{changed}; give the same options to resume, or start afresh with --overwrite")
    else:
        if folder.exists():
            if _has_progress(folder) and not overwrite:
                raise HeadstartError(f"--out {out} has the checkpoints of an unfinished run ({folder}); continue it "
                                     f"with --resume {out}, or pass --overwrite to start afresh")
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with atomic_path(saved_file) as tmp:
            tmp.write_text(json.dumps({"command": command, "spec": spec}, indent=2), encoding="utf-8")
    try:
        with graceful_interrupts():
            yield Checkpoints(folder)
    except HeadstartError:  # a clear error (bad data, a diverged loss, a full disk): resuming would meet it again
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except (KeyboardInterrupt, Interrupted):
        if not _has_progress(folder):
            shutil.rmtree(folder, ignore_errors=True)
            raise Interrupted("nothing was written (stopped before the first checkpoint)") from None
        raise Interrupted(f"the checkpoints are kept in {folder}; run the same command with --resume {out} "
                          "to continue") from None
    shutil.rmtree(folder, ignore_errors=True)


def _has_progress(folder: Path) -> bool:
    """Whether a checkpoint folder holds any work (a checkpoint, a finished piece), not just its command."""
    return any(p.is_file() and p.name != COMMAND_FILE for p in folder.rglob("*"))
