"""The HEADSTART_* environment variables, checked together before a command does any work.

Each is read where it is used (the feature cache, the frozen-prefix cache, checkpoints), and each reader refuses a
bad value in one line; calling the readers here first means a bad value is refused up front, every time, not
only once a run reaches the code that reads it (a cache hit, say, never asks how big the cache may grow).
"""

from __future__ import annotations

from .checkpoints import checkpoint_interval
from .train.cache_store import cache_dir, cache_limit
from .train.prefix import prefix_limit

__all__ = ["check_environment"]


def check_environment() -> None:
    """Raise HeadstartError naming the first HEADSTART_* variable whose value cannot be used."""
    cache_dir()
    cache_limit()
    prefix_limit()
    checkpoint_interval()
