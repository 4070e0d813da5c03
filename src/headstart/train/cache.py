"""The feature cache: a frozen backbone's features are computed once and reused.

Keyed by content (backbone weights and preprocessing, the inputs, precision and batch size), kept in
memory for the process and on disk under $HEADSTART_CACHE (default ~/.cache/headstart/features).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..backbones import Backbone
from ..model import autocast
from ..runs import atomic_path
from .progress import progress_bar

__all__ = ["embed", "cache_dir", "clear_memory_cache"]

_memory: dict[str, torch.Tensor] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("HEADSTART_CACHE", Path.home() / ".cache" / "headstart")) / "features"


def clear_memory_cache() -> None:
    _memory.clear()


def _inputs_digest(inputs: list) -> str:
    digest = hashlib.sha256()
    for x in inputs:
        if isinstance(x, str):
            digest.update(x.encode("utf-8") + b"\0")
        else:
            array = np.ascontiguousarray(x)
            digest.update(str(array.shape).encode() + array.tobytes())
    return digest.hexdigest()


@torch.no_grad()
def _compute(backbone: Backbone, inputs: list, batch_size: int, precision: str, show: bool) -> torch.Tensor:
    was_training = backbone.training
    backbone.eval()
    chunks = []
    with progress_bar(f"embedding {len(inputs)} examples", len(inputs), show) as advance:
        for start in range(0, len(inputs), batch_size):
            batch = backbone.preprocess(inputs[start:start + batch_size])
            with autocast(precision):
                chunks.append(backbone(batch).float())
            advance(len(chunks[-1]))
    backbone.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, backbone.dim)


def embed(backbone: Backbone, inputs: list, batch_size: int = 64, precision: str = "fp32",
          show_progress: bool = True, fingerprint: str | None = None) -> torch.Tensor:
    """Features [N, dim] of inputs through the frozen backbone, from the cache when it has them."""
    fingerprint = fingerprint or backbone.fingerprint()
    key = hashlib.sha256(f"{fingerprint}|{_inputs_digest(inputs)}|{precision}|{batch_size}".encode()).hexdigest()
    if key in _memory:
        return _memory[key]
    path = cache_dir() / f"{key}.safetensors"
    if path.is_file():
        try:
            features = load_file(path)["features"]
        except Exception:  # a damaged cache file is recomputed, never trusted
            features = None
        if features is not None and len(features) == len(inputs):
            _memory[key] = features
            return features
    features = _compute(backbone, inputs, batch_size, precision, show_progress)
    _memory[key] = features
    try:
        with atomic_path(path) as tmp:
            save_file({"features": features.contiguous()}, str(tmp))
    except OSError:
        pass  # a read-only or full disk only costs the disk cache
    return features
