"""The feature cache on disk: where it lives, how big it may grow, and `headstart cache info|clear`.

Entries are safetensors files under $HEADSTART_CACHE/features (default ~/.cache/headstart/features), each
written atomically and checksummed (cache.py), so a concurrent run never reads a half-written one. The folder
is kept under $HEADSTART_CACHE_MAX (default 4GB; e.g. 500MB, 20GB, or 0 for no disk cache): after every write
the least recently used entries go first (a read refreshes an entry's time). An entry another run is reading
when it is evicted stays readable to that run (POSIX keeps an open file until it is closed).

    headstart.cache_info()["bytes"], headstart.clear_cache()["removed"]
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..errors import HeadstartError

__all__ = ["cache_dir", "cache_limit", "parse_size", "touch", "evict", "cache_info", "clear_cache", "DEFAULT_MAX"]

DEFAULT_MAX = "4GB"
_UNITS = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12,
          "ki": 2 ** 10, "mi": 2 ** 20, "gi": 2 ** 30, "ti": 2 ** 40}


def cache_dir() -> Path:
    root = os.environ.get("HEADSTART_CACHE")
    if root and Path(root).exists() and not Path(root).is_dir():  # a cache under it could never be written
        raise HeadstartError(f"HEADSTART_CACHE={root!r} is a file, not a folder; point it at a folder (created "
                             "when missing)")
    return Path(root or Path.home() / ".cache" / "headstart") / "features"


def parse_size(text: str, name: str = "HEADSTART_CACHE_MAX", zero: str = "no disk cache") -> int:
    """'4GB' / '500MB' / '1.5GiB' / '0' / '123456' (bytes) -> bytes; anything else is one clear error, which says
    what 0 means for the variable `name`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?)b?\s*", str(text), re.IGNORECASE)
    if not match or match.group(2).lower() not in _UNITS:
        raise HeadstartError(f"{name}={text!r} is not a size; give e.g. 4GB, 500MB or 0 ({zero})")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def cache_limit() -> int:
    return parse_size(os.environ.get("HEADSTART_CACHE_MAX", DEFAULT_MAX))


def _entries() -> list[os.DirEntry]:
    folder = cache_dir()
    if not folder.is_dir():
        return []
    with os.scandir(folder) as scan:
        return [e for e in scan if e.name.endswith(".safetensors") and e.is_file()]


def touch(path: Path) -> None:
    """Mark an entry as just used (least recently used goes first)."""
    try:
        os.utime(path)
    except OSError:
        pass  # evicted meanwhile, or a read-only cache: only the order of eviction suffers


def evict(keep: Path | None = None) -> None:
    """Remove the least recently used entries until the folder fits under the limit (`keep`, just written, stays
    unless it alone is over the limit)."""
    limit = cache_limit()
    entries = []
    for entry in _entries():
        try:
            info = entry.stat()
        except FileNotFoundError:  # another run evicted it meanwhile
            continue
        entries.append((info.st_mtime, info.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: (e[2] == keep, e[0])):
        if total <= limit:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            break  # a read-only cache: nothing to do
        total -= size


def cache_info() -> dict:
    """Where the cache is, how many entries and bytes it holds, its limit, and its oldest and newest use."""
    sizes, times = [], []
    for entry in _entries():
        try:
            info = entry.stat()
        except FileNotFoundError:
            continue
        sizes.append(info.st_size)
        times.append(info.st_mtime)
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else None  # noqa: E731
    return {"folder": str(cache_dir()), "entries": len(sizes), "bytes": sum(sizes), "limit_bytes": cache_limit(),
            "oldest_use": stamp(min(times, default=0)), "newest_use": stamp(max(times, default=0))}


def clear_cache() -> dict:
    """Remove every entry (and temporary files a killed write left); what was removed."""
    removed, freed = 0, 0
    folder = cache_dir()
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and (path.name.endswith(".safetensors") or path.name.endswith(".tmp")):
                try:
                    size = path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as err:
                    raise HeadstartError(f"cannot remove {path} ({err.strerror}); check the permissions of "
                                         f"{folder}") from None
                removed, freed = removed + 1, freed + size
    return {"folder": str(folder), "removed": removed, "bytes_freed": freed}
