"""The frozen-prefix cache: a phase that freezes the first K layer groups runs them once, not every epoch.

What frozen groups compute does not change while the rest trains (frozen means frozen: eval mode, no dropout,
fixed BatchNorm statistics), so their output is computed once (no grad, at the run's precision) through the
feature cache, keyed by the prefix's weights and each example's content, and the groups after the cut train on
it: for a text the hidden state of every token (padding dropped, batches padded again to their own longest
text), for an image the feature map. Validation reads the cached activations too.

Where it cannot apply, the frozen groups run on every batch as before and the run's notes say why: a tag per
word (the cache keeps no word positions), a backbone that cannot be split there (Backbone.cut says why; a cut is
also checked against the backbone's own forward pass), or activations that would not fit in memory (more than
half of what is available, or $HEADSTART_PREFIX_MAX). Augmented images never get here (new images every epoch).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
from accelerate import PartialState
from torch import nn
from torch.utils.data import DataLoader

from ..batching import starts_of, training_loader
from ..data import TaskData
from ..model import TransferModel, autocast, on_device
from ..tasks import is_words
from .cache import embed
from .cache_store import parse_size

__all__ = ["prefix_inputs", "prefix_limit"]

SAMPLE = 4  # examples on which a cut is checked against the backbone's own forward pass


def prefix_limit() -> int:
    """Bytes the cached activations may take: $HEADSTART_PREFIX_MAX, else half the memory available now."""
    if os.environ.get("HEADSTART_PREFIX_MAX"):
        return parse_size(os.environ["HEADSTART_PREFIX_MAX"], "HEADSTART_PREFIX_MAX", "the frozen-prefix cache off")
    try:
        with open("/proc/meminfo") as meminfo:
            available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return available // 2


class _Suffix(nn.Module):
    """What trains on cached activations: the groups after the cut, pooling, and the model's head."""

    def __init__(self, model: TransferModel, cut):
        super().__init__()
        self.model, self.cut = model, cut

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.head_of(self.cut.suffix(batch["rows"], batch["counts"]))


class _CutRows(torch.utils.data.Dataset):
    """Examples as their rows of cached activations; a batch is those rows one example after another, with counts."""

    def __init__(self, activations: torch.Tensor, counts: np.ndarray, targets: np.ndarray | None = None):
        self.activations, self.counts, self.targets = activations, counts, targets
        self.starts = starts_of(counts)

    def __len__(self):
        return len(self.counts)

    def __getitem__(self, i):
        return i

    def batch(self, index) -> dict[str, torch.Tensor]:
        rows = torch.cat([self.activations[self.starts[i]:self.starts[i] + self.counts[i]] for i in index])
        return {"rows": rows, "counts": torch.from_numpy(self.counts[index])}

    def collate(self, index: list[int]):
        return self.batch(index), torch.from_numpy(self.targets[index])


def prefix_inputs(model: TransferModel, data: TaskData, batch_size: int, precision: str,
                  shuffle: torch.Generator, show_progress: bool, eval_batch: int
                  ) -> tuple[nn.Module, DataLoader, Callable[[], torch.Tensor]] | str:
    """(module to train, training batches, validation logits()) on the cached activations after the frozen groups
    (model.backbone.trainable_from of them), or why the frozen groups must run on every batch instead."""
    k, backbone = model.backbone.trainable_from, model.backbone
    if is_words(data.train.inputs[0]):
        return "a tag per word reads each word's position, which cached activations do not keep"
    cut = backbone.cut(k)
    if isinstance(cut, str):
        return cut
    if not cut.reproduces(list(data.train.inputs[:SAMPLE])):
        return f"the backbone split after group {k} does not give its own features, so it is not split"
    counts = {name: cut.rows(ex.inputs) for name, ex in (("train", data.train), ("val", data.val))}
    size, limit = 4 * cut.width * sum(int(c.sum()) for c in counts.values()), prefix_limit()
    if limit == 0:
        return "the frozen-prefix cache is off (HEADSTART_PREFIX_MAX=0)"
    if size > limit:
        return (f"their activations would take {size / 1e6:,.1f} MB, over the {limit / 1e6:,.1f} MB allowed (half the "
                "available memory, or $HEADSTART_PREFIX_MAX): a larger K, a smaller --image-size or fewer examples "
                "would fit")
    with PartialState().main_process_first():  # the others then read what it put in the disk cache
        cached = {name: embed(backbone, ex.inputs, eval_batch, precision, show_progress, cut=cut, counts=counts[name])
                  for name, ex in (("train", data.train), ("val", data.val))}
    net = _Suffix(model, cut)
    train = _CutRows(cached["train"], counts["train"], data.targets(data.train))
    loader = training_loader(train, data.train.inputs, batch_size, shuffle, train.collate)  # the raw path's batches
    val = _CutRows(cached["val"], counts["val"])
    return net, loader, lambda: _logits(net, val, eval_batch, precision)


@torch.no_grad()
def _logits(net: _Suffix, val: _CutRows, batch_size: int, precision: str) -> torch.Tensor:
    """The model's logits [examples, out] in fp32 on the CPU from cached activations, in order."""
    net.model.eval()
    out = []
    for start in range(0, len(val), batch_size):
        with autocast(precision):
            batch = val.batch(np.arange(start, min(start + batch_size, len(val))))
            out.append(net(on_device(batch, net)).float().cpu())
    return torch.cat(out) if out else torch.empty(0, net.model.task.out_dim())
