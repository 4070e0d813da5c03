"""Which arithmetic to use: bf16 where the CPU computes it natively, fp32 elsewhere."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str | None) -> str:
    if requested is not None:
        return requested
    return "bf16" if cpu_has_native_bf16() else "fp32"
