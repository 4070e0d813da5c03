"""The feature cache: a frozen backbone's features are computed once and reused.

Features are keyed by content: the backbone (weights and preprocessing), the precision, and each
example. In memory the key is per example, so any subset of already-embedded inputs (another fold's
shots, another strategy) costs nothing; on disk, under $HEADSTART_CACHE (default
~/.cache/headstart/features), each embedded input list is one safetensors file, for later processes, the folder
kept under $HEADSTART_CACHE_MAX by evicting the least recently used (cache_store.py).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..backbones import Backbone
from ..model import autocast, on_device
from ..runs import atomic_path
from ..tasks import is_words, rows_of
from .cache_store import cache_dir, cache_limit, evict, touch
from .progress import progress_bar

__all__ = ["embed", "cache_dir", "clear_memory_cache", "content_digest"]

# (backbone fingerprint, precision) -> example digest -> feature row
_memory: dict[tuple[str, str], dict[str, torch.Tensor]] = {}


def clear_memory_cache() -> None:
    _memory.clear()


def content_digest(x) -> str:
    """A hash of one raw input (a text, a list of words or an image array): equal inputs, equal digests."""
    if isinstance(x, str):
        return hashlib.sha1(x.encode("utf-8")).hexdigest()
    if is_words(x):  # hashed as JSON after a NUL byte, which no UTF-8 text's JSON array starts with
        return hashlib.sha1(b"\x00" + json.dumps(x).encode("utf-8")).hexdigest()
    array = np.ascontiguousarray(x)
    return hashlib.sha1(str(array.shape).encode() + array.tobytes()).hexdigest()


@torch.no_grad()
def _compute(backbone: Backbone, inputs: list, batch_size: int, precision: str, show: bool) -> torch.Tensor:
    was_training = backbone.training
    backbone.eval()
    # Filled batch by batch: the features are held once, never as a list of batches and their concatenation.
    features, row = torch.empty(sum(rows_of(x) for x in inputs), backbone.dim), 0
    with progress_bar(f"embedding {len(inputs)} examples", len(inputs), show) as advance:
        for start in range(0, len(inputs), batch_size):
            some = inputs[start:start + batch_size]
            with autocast(precision):
                batch = backbone(on_device(backbone.preprocess(some), backbone))
            features[row:row + len(batch)] = batch.float().cpu()
            row += len(batch)
            advance(len(some))
    backbone.train(was_training)
    return features


def embed(backbone: Backbone, inputs: list, batch_size: int = 64, precision: str = "fp32",
          show_progress: bool = True, fingerprint: str | None = None) -> torch.Tensor:
    """Features [rows, dim] of inputs through the frozen backbone (a row per input, or per word of a list of
    words: tasks.rows_of), computing only what no cache has."""
    fingerprint = fingerprint or backbone.fingerprint()
    rows = _memory.setdefault((fingerprint, precision), {})  # digest -> that input's rows
    digests = [content_digest(x) for x in inputs]
    missing = [i for i, d in enumerate(digests) if d not in rows]
    if missing:
        list_key = hashlib.sha256("|".join([fingerprint, precision, *digests]).encode()).hexdigest()
        path = cache_dir() / f"{list_key}.safetensors"
        features = _read(path, sum(rows_of(x) for x in inputs))
        if features is None:
            todo = [inputs[i] for i in missing]
            computed = _compute(backbone, todo, batch_size, precision, show_progress)
            rows.update(zip((digests[i] for i in missing), _per_input(computed, todo)))
            # Nothing was cached (the usual case): the computed rows are the answer, in order; no second copy.
            features = computed if len(todo) == len(inputs) else torch.cat([rows[d] for d in digests])
            _write(path, features)
        else:
            rows.update(zip(digests, _per_input(features, inputs)))
        return features
    return torch.cat([rows[d] for d in digests]) if inputs else torch.zeros(0, backbone.dim)


def _per_input(features: torch.Tensor, inputs: list) -> tuple[torch.Tensor, ...]:
    return torch.split(features, [rows_of(x) for x in inputs])


def _tensor_digest(features: torch.Tensor) -> str:
    return hashlib.sha256(features.contiguous().reshape(-1).view(torch.uint8).numpy().data).hexdigest()  # no copy


def _read(path: Path, n: int) -> torch.Tensor | None:
    """A cache file's features if they are whole: its checksum is verified, a damaged file recomputed, never used."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            expected = (f.metadata() or {}).get("sha256")
            features = f.get_tensor("features")
        intact = expected == _tensor_digest(features) and len(features) == n
    except FileNotFoundError:  # evicted by another run between the check and the read: a miss
        return None
    except Exception:  # safetensors raises several types for a damaged file
        intact = False
    if not intact:
        warnings.warn(f"the cached features {path.name} are damaged; computing them again", stacklevel=3)
        return None
    touch(path)
    return features


def _write(path: Path, features: torch.Tensor) -> None:
    if cache_limit() == 0:
        return  # HEADSTART_CACHE_MAX=0: no disk cache
    features = features.contiguous()
    try:
        with atomic_path(path) as tmp:
            save_file({"features": features}, str(tmp), metadata={"sha256": _tensor_digest(features)})
    except OSError:
        return  # a read-only or full disk only costs the disk cache
    evict(keep=path)
