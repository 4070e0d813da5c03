"""Checksums of saved folders: a run's model and a backbone folder record what their files hold, verified on load.

A flipped bit in the weights, an edited class list or image size, a swapped tokenizer file: each stops the load
with one line naming the file, instead of giving wrong predictions without a word.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from .errors import HeadstartError

__all__ = ["seal", "verify", "file_sha256"]

CHECKSUMS = "checksums"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _facts_digest(facts: dict) -> str:
    """The digest of a marker's own content: every field, and the file checksums, but not this digest."""
    body = {k: v for k, v in facts.items() if k != CHECKSUMS}
    body[CHECKSUMS] = {"files": facts[CHECKSUMS]["files"]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def seal(folder: Path, facts: dict, marker: str) -> dict:
    """facts plus the checksum of every file in folder (the marker aside) and of the facts themselves."""
    files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(Path(folder).rglob("*"))
             if p.is_file() and p.name != marker}
    sealed = {**facts, CHECKSUMS: {"files": files}}
    sealed[CHECKSUMS]["facts"] = _facts_digest(sealed)
    return sealed


def verify(folder: Path, facts: dict, marker: str, remedy: str) -> None:
    """Stop with one line when the marker or a file it lists is not what was saved. A folder saved before
    checksums existed (no 'checksums' key) loads with a warning that it was not verified."""
    folder = Path(folder)
    sums = facts.get(CHECKSUMS)
    if sums is None:
        warnings.warn(f"{folder / marker} has no checksums (saved by headstart {facts.get('headstart_version', '?')}); "
                      "its files were not verified", stacklevel=3)
        return
    intact = isinstance(sums, dict) and isinstance(sums.get("files"), dict) and _facts_digest(facts) == sums.get("facts")
    if not intact:
        raise HeadstartError(f"{folder / marker} was edited or is damaged (its checksum does not match what was "
                             f"saved); {remedy}")
    for name, digest in sums["files"].items():
        path = folder / name
        if not path.is_file():
            raise HeadstartError(f"{path} is missing; {remedy}")
        if file_sha256(path) != digest:
            raise HeadstartError(f"{path} is damaged or was changed (its checksum does not match the one in "
                                 f"{marker}); {remedy}")
