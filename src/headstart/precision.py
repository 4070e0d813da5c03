"""Which arithmetic to use: bf16 where the CPU computes it natively, fp32 elsewhere."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import HeadstartError


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISIONS = ("fp32", "bf16")


def resolve_precision(requested: str | None) -> str:
    """The arithmetic a run uses: the one asked for (checked), else the CPU's best."""
    if requested is not None:
        if requested not in PRECISIONS:
            raise HeadstartError(f"--precision {requested}: use fp32 or bf16")
        return requested
    return "bf16" if cpu_has_native_bf16() else "fp32"
