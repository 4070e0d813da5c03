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
from typing import NamedTuple

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..backbones import Backbone
from ..backbones._base import Cut
from ..batching import rows_index, starts_of
from ..model import batched_outputs
from ..runs import atomic_path
from ..tasks import is_words, rows_of
from .cache_store import cache_dir, cache_limit, evict, touch
from .progress import progress_bar

__all__ = ["embed", "cache_dir", "clear_memory_cache", "content_digest"]

GATHER_ROWS = 4096  # rows copied at a time when assembling an answer from cached blocks: bounds the temporaries


class _Block(NamedTuple):
    """One embed call's new features and their index: sorted 20-byte digests and each one's rows. About 36 bytes
    an example, against a tensor view's ~700: the index stays small beside the features it points into."""
    keys: np.ndarray  # sorted digests, dtype S20
    start: np.ndarray  # each key's first row in features
    count: np.ndarray  # its number of rows (1, or a list of words' length)
    features: torch.Tensor


# (backbone fingerprint, precision) -> the blocks embedded so far
_memory: dict[tuple[str, str], list[_Block]] = {}


def clear_memory_cache() -> None:
    _memory.clear()


def content_digest(x) -> bytes:
    """A 20-byte hash of one raw input (a text, a list of words or an image array): equal inputs, equal digests."""
    if isinstance(x, str):
        return hashlib.sha1(x.encode("utf-8")).digest()
    if is_words(x):  # hashed as JSON after a NUL byte, which no UTF-8 text's JSON array starts with
        return hashlib.sha1(b"\x00" + json.dumps(x).encode("utf-8")).digest()
    array = np.ascontiguousarray(x)
    return hashlib.sha1(str(array.shape).encode() + array.tobytes()).digest()


def _compute(backbone: Backbone, inputs: list, counts: np.ndarray, batch_size: int, precision: str, show: bool,
             cut: Cut | None = None) -> torch.Tensor:
    """The rows of inputs (counts of them each) through the backbone, or through its prefix up to `cut`."""
    through, width = (cut, cut.width) if cut is not None else (backbone, backbone.dim)
    with backbone.evaluating(), progress_bar(f"embedding {len(inputs)} examples" + (
            f" through the first {cut.k} layer groups" if cut else ""), len(inputs), show) as advance:
        return batched_outputs(through, backbone, inputs, batch_size, precision, width, advance, counts)


def embed(backbone: Backbone, inputs: list, batch_size: int = 64, precision: str = "fp32",
          show_progress: bool = True, fingerprint: str | None = None, cut: Cut | None = None,
          counts: np.ndarray | None = None) -> torch.Tensor:
    """Features [rows, dim] of inputs through the frozen backbone (a row per input, or per word of a list of
    words: tasks.rows_of), computing only what no cache has. With `cut`, the activations where the backbone's
    frozen prefix ends instead ([rows, cut.width], cut.rows(inputs) rows an input), keyed by the prefix alone.
    `counts`: each input's rows, where the caller has them already (a text's count means tokenising it)."""
    fingerprint = cut.fingerprint() if cut is not None else fingerprint or backbone.fingerprint()
    width = cut.width if cut is not None else backbone.dim
    blocks = _memory.setdefault((fingerprint, precision), [])
    keys = np.array([content_digest(x) for x in inputs], dtype="S20")
    found = _locate(blocks, keys)
    missing = np.flatnonzero(found[0] < 0)
    if not len(missing):
        return _gather(blocks, *found, width)
    if counts is None:
        counts = cut.rows(inputs) if cut is not None else np.array([rows_of(x) for x in inputs], dtype=np.int64)
    list_key = hashlib.sha256(f"{fingerprint}|{precision}|".encode() + keys.tobytes()).hexdigest()
    path = cache_dir() / f"{list_key}.safetensors"
    features = _read(path, int(counts.sum()))
    if features is not None:
        _remember(blocks, keys, counts, missing, features)
        return features
    _, first = np.unique(keys[missing], return_index=True)  # an input given twice is embedded once
    todo = missing[np.sort(first)]
    computed = _compute(backbone, [inputs[i] for i in todo], counts[todo], batch_size, precision, show_progress, cut)
    _remember(blocks, keys[todo], counts[todo], np.arange(len(todo)), computed)
    # Nothing was cached (the usual case): the computed rows are the answer, in order; no second copy.
    features = computed if len(todo) == len(inputs) else _gather(blocks, *_locate(blocks, keys), width)
    _write(path, features)
    return features


def _remember(blocks: list[_Block], keys: np.ndarray, counts: np.ndarray, which: np.ndarray,
              features: torch.Tensor) -> None:
    """Index the rows of the inputs `which` (of keys/counts, whose rows fill features in order) as a new block."""
    starts = starts_of(counts)
    sorted_keys, first = np.unique(keys[which], return_index=True)  # the first of an input given twice
    blocks.append(_Block(sorted_keys, starts[which[first]], counts[which[first]], features))


def _locate(blocks: list[_Block], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each key: the block holding it (-1: none), its first row there and its number of rows."""
    block, start, count = np.full(len(keys), -1), np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
    for b, held in enumerate(blocks):
        todo = np.flatnonzero(block < 0)
        if not len(todo):
            break
        at = np.minimum(np.searchsorted(held.keys, keys[todo]), len(held.keys) - 1)
        hit = held.keys[at] == keys[todo]
        block[todo[hit]], start[todo[hit]], count[todo[hit]] = b, held.start[at[hit]], held.count[at[hit]]
    return block, start, count


def _gather(blocks: list[_Block], block: np.ndarray, start: np.ndarray, count: np.ndarray, dim: int) -> torch.Tensor:
    """The answer in input order from the blocks: one block's whole features when they are it, else one new tensor
    filled a few thousand rows at a time."""
    if len(block) and (block == block[0]).all():
        held = blocks[block[0]].features
        if count.sum() == len(held) and np.array_equal(start, starts_of(count)):
            return held
    out = torch.empty(int(count.sum()), dim)
    dest = starts_of(count)
    for part in range(0, len(block), GATHER_ROWS):
        part = slice(part, part + GATHER_ROWS)
        for b in np.unique(block[part]):
            these = np.flatnonzero(block[part] == b) + part.start
            rows = torch.from_numpy(rows_index(start[these], count[these]))
            out[torch.from_numpy(rows_index(dest[these], count[these]))] = blocks[b].features[rows]
    return out


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
